//! Screen recognition and extraction: from a parsed dump and a UI map to what a person
//! sees — a conversation list with its rows, a chat with its messages, a dialog, or
//! WeChat hiding its tree.
//!
//! Facts from real dumps shape every rule here (fixtures/real-dumps/README.md): a dump holds
//! other apps' windows beside WeChat's; a chat layer can sit over the list inside one window;
//! the chat title may be empty; system lines reuse the message-text id without the message
//! layout around them; the message layout spans the whole row, so the side is read from the
//! avatar's position.

use serde::Serialize;

use crate::dump::{Dump, NodeId, Rect};
use crate::uimap::{Role, UiMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreenKind {
    ConversationList,
    Chat,
    Dialog,
    /// WeChat is in front but its dump is one empty node (8.0.55+ without an
    /// accessibility service): only vision mode can read it.
    HiddenTree,
    /// WeChat is not on screen at all.
    NotWechat,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unread {
    None,
    /// A red dot without a number (muted chats).
    Dot,
    /// A count badge whose number could not be read (a screenshot's digits smudged, cut or
    /// too small). Unread, how many unknown: never a dot's one, which would make a chat's
    /// first read take one message as news and lose the rest.
    Uncounted,
    Count(u32),
}

impl Unread {
    pub fn is_unread(&self) -> bool {
        !matches!(self, Unread::None)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationRow {
    /// None only for a row cut off at the screen's edge.
    pub title: Option<String>,
    pub preview: Option<String>,
    pub time: Option<String>,
    pub unread: Unread,
    /// None when this WeChat build's mute icon is not known to the map.
    pub muted: Option<bool>,
    pub bounds: Rect,
}

impl ConversationRow {
    /// `[N条]` before a muted row's preview counts its unread messages.
    pub fn preview_count(&self) -> Option<u32> {
        let rest = self.preview.as_deref()?.strip_prefix('[')?;
        let (digits, _) = rest.split_once("条]")?;
        digits.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationList {
    pub title: Option<String>,
    /// The unread total on the 微信 tab.
    pub tab_unread: Option<u32>,
    pub rows: Vec<ConversationRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Text,
    TimeDivider,
    /// A centred line such as `X邀请Y加入了群聊` or a recall notice: never a message to answer.
    System,
    Media,
    /// A bubble whose content is not in the dump (6.x/7.0 builds).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
    Centre,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatItem {
    pub kind: ItemKind,
    pub side: Side,
    /// The sender's name line (groups, others only).
    pub sender: Option<String>,
    /// The name in the avatar's description (`<name>头像`).
    pub avatar: Option<String>,
    pub text: Option<String>,
    pub bounds: Rect,
}

impl ChatItem {
    /// A message someone wrote (as opposed to dividers and system lines).
    pub fn is_message(&self) -> bool {
        matches!(
            self.kind,
            ItemKind::Text | ItemKind::Media | ItemKind::Unknown
        )
    }
    pub fn is_own(&self) -> bool {
        self.is_message() && self.side == Side::Right
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputBox {
    pub text: String,
    pub bounds: Rect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatView {
    /// The chat's name when the title bar shows it; often empty in 8.0.x dumps.
    pub title: Option<String>,
    /// The unread count beside the back arrow (other chats' messages).
    pub back_unread: Option<u32>,
    pub messages: Vec<ChatItem>,
    pub message_list: Option<Rect>,
    pub input: Option<InputBox>,
    pub send_button: Option<Rect>,
    pub back_button: Option<Rect>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialogButton {
    pub text: String,
    pub bounds: Rect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dialog {
    pub package: String,
    pub texts: Vec<String>,
    pub buttons: Vec<DialogButton>,
    /// The button that dismisses the dialog without agreeing to anything, if one is known.
    pub dismiss: Option<DialogButton>,
    pub bounds: Rect,
}

/// Everything read from one dump. `kind` is what is in front; a chat layer over the list
/// leaves both readings filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenReading {
    pub kind: ScreenKind,
    pub map: String,
    pub list: Option<ConversationList>,
    pub chat: Option<ChatView>,
    pub dialog: Option<Dialog>,
}

/// Packages whose windows are never the app or a dialog of interest.
const DECOR_PACKAGES: &[&str] = &["com.android.systemui"];

pub fn read_screen(dump: &Dump, map: &UiMap) -> ScreenReading {
    let reader = Reader { dump, map };
    let wechat_windows: Vec<NodeId> = dump
        .windows()
        .iter()
        .copied()
        .filter(|w| *dump.node(*w).package == *map.package)
        .collect();

    let mut reading = ScreenReading {
        kind: ScreenKind::Other,
        map: map.name.clone(),
        list: None,
        chat: None,
        dialog: None,
    };
    if wechat_windows.is_empty() {
        reading.kind = ScreenKind::NotWechat;
        return reading;
    }
    if window_hidden(dump, &wechat_windows) {
        reading.kind = ScreenKind::HiddenTree;
        return reading;
    }

    reading.list = reader.conversation_list(&wechat_windows);
    reading.chat = reader.chat(&wechat_windows);
    reading.dialog = reader.dialog();
    reading.kind = if reading.dialog.is_some() {
        ScreenKind::Dialog
    } else if reading.chat.is_some() {
        ScreenKind::Chat
    } else if reading.list.is_some() {
        ScreenKind::ConversationList
    } else {
        ScreenKind::Other
    };
    reading
}

struct Reader<'a> {
    dump: &'a Dump,
    map: &'a UiMap,
}

impl Reader<'_> {
    fn find_in(&self, scope: NodeId, role: Role) -> Option<NodeId> {
        if !self.map.has(role) {
            return None;
        }
        self.dump
            .subtree(scope)
            .find(|id| self.map.is(role, self.dump.node(*id)))
    }

    fn find_in_windows(&self, windows: &[NodeId], role: Role) -> Option<NodeId> {
        windows.iter().find_map(|w| self.find_in(*w, role))
    }

    fn text_in(&self, scope: NodeId, role: Role) -> Option<String> {
        self.find_in(scope, role)
            .map(|id| self.dump.node(id).text.to_string())
    }

    fn non_empty_text(&self, id: NodeId) -> Option<String> {
        let text = &self.dump.node(id).text;
        (!text.is_empty()).then(|| text.to_string())
    }

    fn number_in(&self, windows: &[NodeId], role: Role) -> Option<u32> {
        let id = self.find_in_windows(windows, role)?;
        parse_count(&self.dump.node(id).text)
    }

    fn conversation_list(&self, windows: &[NodeId]) -> Option<ConversationList> {
        let list = self.find_in_windows(windows, Role::ConversationList)?;
        let window = [self.dump.window_of(list)];
        let rows = self
            .dump
            .descendants(list)
            .filter(|id| self.map.is(Role::ConversationRow, self.dump.node(*id)))
            .map(|row| self.conversation_row(row))
            .collect();
        Some(ConversationList {
            title: self
                .find_in_windows(&window, Role::ScreenTitle)
                .and_then(|id| self.non_empty_text(id)),
            tab_unread: self.number_in(&window, Role::TabUnread),
            rows,
        })
    }

    fn conversation_row(&self, row: NodeId) -> ConversationRow {
        let badge = self
            .find_in(row, Role::RowUnreadBadge)
            .and_then(|id| parse_count(&self.dump.node(id).text));
        let unread = match badge {
            Some(count) if count > 0 => Unread::Count(count),
            _ if self.find_in(row, Role::RowUnreadDot).is_some() => Unread::Dot,
            _ => Unread::None,
        };
        ConversationRow {
            title: self.text_in(row, Role::RowTitle),
            preview: self.text_in(row, Role::RowPreview),
            time: self.text_in(row, Role::RowTime),
            unread,
            muted: self
                .map
                .has(Role::RowMuted)
                .then(|| self.find_in(row, Role::RowMuted).is_some()),
            bounds: self.dump.node(row).bounds,
        }
    }

    fn chat(&self, windows: &[NodeId]) -> Option<ChatView> {
        let list = self.find_in_windows(windows, Role::MessageList);
        let title = self.find_in_windows(windows, Role::ChatTitle);
        let input = self.find_in_windows(windows, Role::Input);
        let anchor = list.or(title).or(input)?;
        let window = [self.dump.window_of(anchor)];
        let title_text = title.and_then(|id| self.non_empty_text(id)).or_else(|| {
            self.find_in_windows(&window, Role::ChatTitleBar)
                .and_then(|id| self.non_empty_text(id))
        });
        let bounds = |id: Option<NodeId>| id.map(|id| self.dump.node(id).bounds);
        Some(ChatView {
            title: title_text,
            back_unread: self.number_in(&window, Role::ChatBackUnread),
            messages: list.map(|l| self.messages(l)).unwrap_or_default(),
            message_list: bounds(list),
            input: input.map(|id| InputBox {
                text: self.dump.node(id).text.to_string(),
                bounds: self.dump.node(id).bounds,
            }),
            send_button: bounds(self.find_in_windows(&window, Role::SendButton)),
            back_button: bounds(self.find_in_windows(&window, Role::ChatBack)),
        })
    }

    /// Walks the message list in document order: dividers and system lines are where they
    /// stand; a message layout is read whole and its subtree skipped.
    fn messages(&self, list: NodeId) -> Vec<ChatItem> {
        let list_bounds = self.dump.node(list).bounds;
        let mut items = Vec::new();
        let end = self.dump.subtree_end(list);
        let mut id = list + 1;
        while id < end {
            let node = self.dump.node(id);
            if self.map.is(Role::TimeDivider, node) {
                if !node.text.is_empty() {
                    items.push(ChatItem {
                        kind: ItemKind::TimeDivider,
                        side: Side::Centre,
                        sender: None,
                        avatar: None,
                        text: Some(node.text.to_string()),
                        bounds: node.bounds,
                    });
                }
            } else if self.map.is(Role::MessageLayout, node) {
                items.push(self.message(id, &list_bounds));
                id = self.dump.subtree_end(id);
                continue;
            } else if self.map.is(Role::MessageText, node) && !node.text.is_empty() {
                items.push(ChatItem {
                    kind: ItemKind::System,
                    side: Side::Centre,
                    sender: None,
                    avatar: None,
                    text: Some(node.text.to_string()),
                    bounds: node.bounds,
                });
            }
            id += 1;
        }
        items
    }

    fn message(&self, layout: NodeId, list_bounds: &Rect) -> ChatItem {
        let avatar = self.find_in(layout, Role::MessageAvatar);
        let text_node = self.find_in(layout, Role::MessageText);
        let media = self.find_in(layout, Role::MessageMedia);
        let sender = self.text_in(layout, Role::MessageSender);
        let avatar_name = avatar.and_then(|id| {
            let desc = &self.dump.node(id).content_desc;
            let suffix = self.map.avatar.desc_suffix.as_str();
            let name = desc.strip_suffix(suffix).unwrap_or(desc);
            (!name.is_empty()).then(|| name.to_string())
        });
        let text = text_node
            .and_then(|id| self.non_empty_text(id))
            .or_else(|| {
                self.find_in(layout, Role::MessageFileName)
                    .and_then(|id| self.non_empty_text(id))
            });
        let kind = match (&text, text_node, media) {
            (_, _, Some(_)) => ItemKind::Media,
            (Some(_), Some(_), None) => ItemKind::Text,
            _ => ItemKind::Unknown,
        };
        // The layout spans the row, so the side comes from where the avatar (or, without
        // one, the bubble) sits relative to the list's centre.
        let anchor = avatar.or(text_node).or(media);
        let side = match anchor {
            Some(id) if self.dump.node(id).bounds.center().0 > list_bounds.center().0 => {
                Side::Right
            }
            _ => Side::Left,
        };
        let bubble = text_node.or(media).unwrap_or(layout);
        ChatItem {
            kind,
            side,
            sender: sender.filter(|s| !s.is_empty()),
            avatar: avatar_name,
            text,
            bounds: self.dump.node(bubble).bounds,
        }
    }

    /// A modal dialog: a window of its own that does not cover the screen and offers
    /// buttons. The full-screen window behind it is the app.
    fn dialog(&self) -> Option<Dialog> {
        let dump = self.dump;
        let screen = dump
            .windows()
            .iter()
            .map(|w| dump.node(*w).bounds)
            .max_by_key(|b| i64::from(b.width()) * i64::from(b.height()))?;
        for window in dump.windows().iter().rev() {
            let root = dump.node(*window);
            if DECOR_PACKAGES.contains(&&*root.package) || root.bounds == screen {
                continue;
            }
            let buttons: Vec<DialogButton> = dump
                .subtree(*window)
                .filter(|id| {
                    let node = dump.node(*id);
                    node.clickable
                        && !node.text.is_empty()
                        && (self.map.is(Role::DialogButton, node)
                            || self.map.is(Role::DialogDismiss, node))
                })
                .map(|id| DialogButton {
                    text: dump.node(id).text.to_string(),
                    bounds: dump.node(id).bounds,
                })
                .collect();
            if buttons.is_empty() {
                continue;
            }
            let dismiss = self.dismiss_button(&buttons);
            let texts = dump
                .subtree(*window)
                .filter_map(|id| {
                    let node = dump.node(id);
                    (!node.text.is_empty() && !buttons.iter().any(|b| b.bounds == node.bounds))
                        .then(|| node.text.to_string())
                })
                .collect();
            return Some(Dialog {
                package: root.package.to_string(),
                texts,
                buttons,
                dismiss,
                bounds: root.bounds,
            });
        }
        None
    }

    /// The first dismiss selector (in the map's order of preference) that a button matches.
    fn dismiss_button(&self, buttons: &[DialogButton]) -> Option<DialogButton> {
        let selectors = match self.map.selector(Role::DialogDismiss)? {
            crate::uimap::RoleSelector::One(one) => std::slice::from_ref(one),
            crate::uimap::RoleSelector::Any(many) => many.as_slice(),
        };
        selectors.iter().find_map(|selector| {
            buttons
                .iter()
                .find(|b| selector.text.as_deref() == Some(b.text.as_str()))
                .cloned()
        })
    }
}

/// Reads an unread count such as `3` or `99+`.
fn parse_count(text: &str) -> Option<u32> {
    text.trim().trim_end_matches('+').parse().ok()
}

/// Reads a dump whose WeChat version is unknown (a file from a bug report): every map is
/// tried and the reading that recognises the most wins.
pub fn read_screen_any(dump: &Dump, maps: &crate::uimap::UiMaps) -> Option<ScreenReading> {
    maps.maps()
        .iter()
        .map(|map| read_screen(dump, map))
        .max_by_key(|reading| {
            let recognised = !matches!(reading.kind, ScreenKind::Other | ScreenKind::NotWechat);
            let rows = reading.list.as_ref().map_or(0, |l| l.rows.len());
            let items = reading.chat.as_ref().map_or(0, |c| c.messages.len());
            (recognised, rows + items)
        })
}

/// Whether an app's windows in a dump show its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeVisibility {
    Visible,
    /// WeChat ≥ 8.0.55 without accessibility in use: one empty node where its tree was.
    Hidden,
    /// The app has no window in the dump (it is not in front).
    NoWechat,
}

/// Whether `package`'s windows in `dump` hold its tree, independent of any UI map.
pub fn tree_visibility(dump: &Dump, package: &str) -> TreeVisibility {
    let windows: Vec<NodeId> = dump
        .windows()
        .iter()
        .copied()
        .filter(|w| *dump.node(*w).package == *package)
        .collect();
    if windows.is_empty() {
        TreeVisibility::NoWechat
    } else if window_hidden(dump, &windows) {
        TreeVisibility::Hidden
    } else {
        TreeVisibility::Visible
    }
}

/// The hidden-tree sign: every window of the app is one node with empty bounds.
fn window_hidden(dump: &Dump, windows: &[NodeId]) -> bool {
    windows.iter().all(|w| {
        let node = dump.node(*w);
        node.children.is_empty() && node.bounds.is_empty()
    })
}
