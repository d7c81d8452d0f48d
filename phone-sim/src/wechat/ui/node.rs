//! A node of the view tree (what a dump prints, where a tap lands, how a screenshot paints it)
//! and the builders the screens are written with, so that each builder reads like the real dump
//! it was copied from.

use std::ops::BitOr;

use super::WECHAT_PKG;
use crate::display::Screen;
use crate::wechat::model::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// How the screenshot renderer paints a node. Dumps never see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Paint {
    /// Not at all: a container whose children paint themselves.
    #[default]
    None,
    /// A plain rectangle.
    Fill(Ink),
    /// The node's text, in this style.
    Text(TextStyle),
    /// A text message's bubble (own green at the right, others' white at the left), its tail
    /// toward the avatar, with the node's text inside, wrapped as the layout wrapped it.
    Bubble {
        own: bool,
    },
    /// The chat's input field with the draft in it.
    Field,
    /// The green send button, `发送` in white.
    Button,
    /// A picture message's thumbnail.
    Image,
    /// A sticker: a larger picture without a bubble.
    Sticker,
    /// A red packet's orange card, tail toward the avatar.
    RedPacket {
        own: bool,
    },
    /// An avatar: a rounded square of this colour (derived from the person's name).
    Avatar(u32),
    Icon(Icon),
    /// A red unread badge with a number.
    Badge,
    /// A red unread dot without a number.
    Dot,
}

/// The part a colour plays; the theme turns it into a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ink {
    ChatBackground,
    /// The conversation list and its rows.
    ListBackground,
    PinnedRow,
    /// Status, tab and input bars.
    Bar,
    Separator,
    Dialog,
    /// Primary text: titles, messages.
    Text,
    /// Previews, times, sender names.
    TextGrey,
    /// Time dividers and system lines.
    TextFaint,
    /// WeChat's brand green: the selected tab, the launcher icon.
    Brand,
    /// The dialog's confirming button.
    Link,
    /// Text on a coloured card (the red packet's greeting).
    OnColour,
    /// The red packet card's footer label.
    RedPacketLabel,
    Wallpaper,
    GestureHandle,
    AccessibilityButton,
}

/// How a label is drawn: colour, size, where in its bounds, and whether it wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextStyle {
    pub ink: Ink,
    pub size: TextSize,
    pub align: Align,
    /// Wrap at this many units (see `text::wrap`); 0 keeps only the text's own line breaks.
    pub wrap: i32,
}

impl TextStyle {
    pub const fn new(ink: Ink, size: TextSize) -> Self {
        TextStyle {
            ink,
            size,
            align: Align::Left,
            wrap: 0,
        }
    }

    pub const fn centred(mut self) -> Self {
        self.align = Align::Centre;
        self
    }

    pub const fn right(mut self) -> Self {
        self.align = Align::Right;
        self
    }

    pub const fn wrapped(mut self, units: i32) -> Self {
        self.wrap = units;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Align {
    Left,
    Centre,
    Right,
}

/// A type size in layout pixels: per unit of text width (an ASCII character is one unit, a
/// CJK one two, so the font's em is two units) and per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextSize {
    pub unit_px: i32,
    pub line_h: i32,
}

/// What an icon shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icon {
    Back,
    More,
    Search,
    /// The ⊕ at the top right of the list and the input bar's "more".
    Plus,
    Voice,
    Emoji,
    Mute,
    /// A bottom tab's icon, by position; the selected one is green.
    Tab {
        index: u8,
        selected: bool,
    },
    Battery,
    /// Another app on the launcher.
    App,
}

// The light theme's colours (WeUI's light palette, `Tencent/weui`
// `src/style/base/theme/vars/light.less`), which the tests probe for.
/// The chat's background (WeUI `BG-0`).
pub const CHAT_BACKGROUND: u32 = 0xEDEDED;
pub const WHITE: u32 = 0xFFFFFF;
/// The grey of the bars (status, tab, input) and of pinned rows (WeUI `BG-1`).
pub const BAR_GREY: u32 = 0xF7F7F7;
/// The user's own bubbles (WeUI `LIGHTGREEN`).
pub const OWN_BUBBLE_GREEN: u32 = 0x95EC69;
/// WeChat's brand green: the send button, the selected tab's label, the app's icon (WeUI
/// `BRAND`).
pub const WECHAT_GREEN: u32 = 0x07C160;
/// Text: WeUI's `FG-0`, black at 90 %, on white.
pub const TEXT_DARK: u32 = 0x191919;
pub const TEXT_GREY: u32 = 0x9E9E9E;
/// Badges and dots (WeUI `RED`).
pub const BADGE_RED: u32 = 0xFA5151;

#[derive(Debug, Clone, Default, Hash)]
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
    /// Text the screen shows but the view does not report to accessibility, so dumps leave
    /// it out: WeChat 8.0's chat title. Painted where `text` is empty.
    pub screen_text: String,
    /// The node's bounds before [`Node::clipped`] cut them to what shows: a screenshot draws a
    /// half-scrolled bubble whole and lets the list's edge cut it. Dumps never see it.
    pub unclipped: Option<Rect>,
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

    pub(super) fn with_screen_text(mut self, text: impl Into<String>) -> Self {
        self.screen_text = text.into();
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

    /// Moves the node and everything in it down by `dy`.
    pub(super) fn translated(mut self, dy: i32) -> Self {
        if dy != 0 {
            self.shift(dy);
        }
        self
    }

    fn shift(&mut self, dy: i32) {
        self.bounds.top += dy;
        self.bounds.bottom += dy;
        if let Some(u) = &mut self.unclipped {
            u.top += dy;
            u.bottom += dy;
        }
        for c in &mut self.children {
            c.shift(dy);
        }
    }

    /// From layout pixels to `screen`'s pixels, each edge rounded on its own as Android
    /// rounds each dimension.
    pub(super) fn scale_to(&mut self, screen: &Screen) {
        fn px(screen: &Screen, r: Rect) -> Rect {
            rect(
                screen.to_px(r.left),
                screen.to_px(r.top),
                screen.to_px(r.right),
                screen.to_px(r.bottom),
            )
        }
        self.bounds = px(screen, self.bounds);
        self.unclipped = self.unclipped.map(|r| px(screen, r));
        for c in &mut self.children {
            c.scale_to(screen);
        }
    }

    /// Drops what lies outside `clip` and shrinks the rest to it, as the accessibility
    /// framework reports only the visible part of a view.
    pub(super) fn clipped(mut self, clip: &Rect) -> Option<Node> {
        let visible = self.bounds.intersect(clip)?;
        if visible != self.bounds {
            self.unclipped = Some(self.unclipped.unwrap_or(self.bounds));
        }
        self.bounds = visible;
        self.children = std::mem::take(&mut self.children)
            .into_iter()
            .filter_map(|c| c.clipped(clip))
            .collect();
        Some(self)
    }
}
