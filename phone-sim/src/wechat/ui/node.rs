//! A node of the view tree (what a dump prints, where a tap lands, how a screenshot paints it)
//! and the builders the screens are written with, so that each builder reads like the real dump
//! it was copied from.

use std::ops::BitOr;

use super::WECHAT_PKG;
use crate::wechat::model::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

pub const fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
    Rect {
        left,
        top,
        right,
        bottom,
    }
}

impl Rect {
    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.left && x < self.right && y >= self.top && y < self.bottom
    }

    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let overlap = rect(
            self.left.max(other.left),
            self.top.max(other.top),
            self.right.min(other.right),
            self.bottom.min(other.bottom),
        );
        (overlap.left < overlap.right && overlap.top < overlap.bottom).then_some(overlap)
    }

    pub fn width(&self) -> i32 {
        self.right - self.left
    }

    pub fn height(&self) -> i32 {
        self.bottom - self.top
    }
}

/// How the screenshot renderer paints a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paint {
    /// Not at all: a container whose children paint themselves.
    #[default]
    None,
    /// A plain rectangle of this colour.
    Fill(u32),
    /// Text bars of this colour, one per line.
    Text(u32),
    /// A chat bubble (or a button or field drawn like one) of this colour, with its text.
    Bubble(u32),
    /// An avatar or an icon: a grey-blue square.
    Avatar,
    /// A red unread badge with a number.
    Badge,
    /// A red unread dot without a number.
    Dot,
}

/// The chat's background.
pub const CHAT_BACKGROUND: u32 = 0xEDEDED;
pub const WHITE: u32 = 0xFFFFFF;
/// The grey of the bars (status, tab, input) and of pinned rows.
pub const BAR_GREY: u32 = 0xF7F7F7;
/// The user's own bubbles.
pub const OWN_BUBBLE_GREEN: u32 = 0x95EC69;
/// WeChat's brand green: the send button, the selected tab's label, the app's icon.
pub const WECHAT_GREEN: u32 = 0x07C160;
pub const TEXT_DARK: u32 = 0x191919;
pub const TEXT_GREY: u32 = 0x9E9E9E;

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub class: &'static str,
    pub id: String,
    pub text: String,
    /// `content-desc`
    pub desc: String,
    pub package: &'static str,
    pub bounds: Rect,
    pub checkable: bool,
    pub checked: bool,
    pub clickable: bool,
    pub enabled: bool,
    pub focusable: bool,
    pub focused: bool,
    pub scrollable: bool,
    pub long_clickable: bool,
    pub password: bool,
    pub selected: bool,
    /// uiautomator's `NAF="true"` ("not accessibility friendly"), which real dumps put on a
    /// few clickable views without a label.
    pub naf: bool,
    /// The `index` attribute when it is not the node's position among its siblings.
    pub index: Option<u32>,
    pub drawing_order: u32,
    /// What a tap on this node does; taps fall through nodes without one.
    pub action: Option<Action>,
    pub paint: Paint,
    pub children: Vec<Node>,
}

/// Which of a node's boolean states a builder turns on; `enabled` always is, the rest are off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flags(u8);

pub(super) const NO_FLAGS: Flags = Flags(0);
pub(super) const CLICKABLE: Flags = Flags(1);
pub(super) const LONG_CLICKABLE: Flags = Flags(1 << 1);
pub(super) const SCROLLABLE: Flags = Flags(1 << 2);
pub(super) const FOCUSABLE: Flags = Flags(1 << 3);

impl Flags {
    fn has(self, flag: Flags) -> bool {
        self.0 & flag.0 != 0
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

pub(super) const FRAME_LAYOUT: &str = "android.widget.FrameLayout";
pub(super) const LINEAR_LAYOUT: &str = "android.widget.LinearLayout";
pub(super) const RELATIVE_LAYOUT: &str = "android.widget.RelativeLayout";
pub(super) const TEXT_VIEW: &str = "android.widget.TextView";
pub(super) const IMAGE_VIEW: &str = "android.widget.ImageView";
pub(super) const IMAGE_BUTTON: &str = "android.widget.ImageButton";
pub(super) const BUTTON: &str = "android.widget.Button";
pub(super) const EDIT_TEXT: &str = "android.widget.EditText";
pub(super) const SCROLL_VIEW: &str = "android.widget.ScrollView";
pub(super) const LIST_VIEW: &str = "android.widget.ListView";
pub(super) const RECYCLER_VIEW: &str = "androidx.recyclerview.widget.RecyclerView";
pub(super) const VIEW_GROUP: &str = "android.view.ViewGroup";
pub(super) const VIEW: &str = "android.view.View";

/// A node of `package`'s window. `id` is the short name the package gives it (prefixed here
/// with `package:id/`), a full id when it holds a colon (`android:id/text1`), or empty.
pub(super) fn package_node(
    package: &'static str,
    class: &'static str,
    id: &str,
    bounds: Rect,
    flags: Flags,
    drawing_order: u32,
) -> Node {
    Node {
        class,
        id: if id.is_empty() || id.contains(':') {
            id.to_string()
        } else {
            format!("{package}:id/{id}")
        },
        package,
        bounds,
        enabled: true,
        clickable: flags.has(CLICKABLE),
        long_clickable: flags.has(LONG_CLICKABLE),
        scrollable: flags.has(SCROLLABLE),
        focusable: flags.has(FOCUSABLE),
        drawing_order,
        ..Node::default()
    }
}

/// A node of WeChat's window; see [`package_node`] for `id`.
pub(super) fn wechat_node(
    class: &'static str,
    id: &str,
    bounds: Rect,
    flags: Flags,
    drawing_order: u32,
) -> Node {
    package_node(WECHAT_PKG, class, id, bounds, flags, drawing_order)
}

/// Nests `outer → … → inner`, each node the only child of the one before; the innermost
/// keeps its own children.
pub(super) fn nest(nodes: Vec<Node>) -> Node {
    let mut outer_first = nodes.into_iter().rev();
    let mut inner = outer_first.next().unwrap_or_default();
    for mut outer in outer_first {
        outer.children = vec![inner];
        inner = outer;
    }
    inner
}

impl Node {
    pub(super) fn with_children(mut self, children: Vec<Node>) -> Self {
        self.children = children;
        self
    }

    pub(super) fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    pub(super) fn with_desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = desc.into();
        self
    }

    pub(super) fn marked_naf(mut self) -> Self {
        self.naf = true;
        self
    }

    pub(super) fn at_index(mut self, index: u32) -> Self {
        self.index = Some(index);
        self
    }

    pub(super) fn on_tap(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    pub(super) fn painted(mut self, paint: Paint) -> Self {
        self.paint = paint;
        self
    }

    /// Pre-order walk.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }

    /// Drops what lies outside `clip` and shrinks the rest to it, as the accessibility
    /// framework reports only the visible part of a view.
    pub(super) fn clipped(mut self, clip: &Rect) -> Option<Node> {
        self.bounds = self.bounds.intersect(clip)?;
        self.children = std::mem::take(&mut self.children)
            .into_iter()
            .filter_map(|c| c.clipped(clip))
            .collect();
        Some(self)
    }
}
