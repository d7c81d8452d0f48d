//! The view tree of the screen, built from the model. Dumps, taps and screenshots all read
//! this one tree, so what a reader sees, where a tap lands and what a screenshot shows agree.
//!
//! Geometry and nesting are copied from the real 8.0.x dumps in `fixtures/real-dumps/`
//! (720×1608, status bar to 76 px, action bar to 162, tab or input bar from 1507); resource
//! ids come from [`Ids`]. Every number here is in layout pixels, the pixels of that 720-wide
//! xhdpi screen; [`build_windows`] scales the finished tree to the device's screen (see
//! [`crate::display`]), and what sits at the bottom follows the screen's bottom edge.
//!
//! - `node`: [`Node`], [`Rect`], how a node is [`Paint`]ed, and the builders every screen uses.
//! - `text`: text widths in units (ASCII 1, CJK 2), wrapping, WeChat's trailing `…`.
//! - `frame`: the frame every WeChat screen sits in.
//! - `conversation_list`: the 微信 tab: action bar, list (with its scrolling title copy).
//! - `conversation_row`: one row of that list: avatar, unread badge or dot, title, time, preview.
//! - `tab_bar`: the bottom tabs of the main screen, with the unread total.
//! - `chat`: a chat (`ChattingUI`): action bar, message list, scrolling.
//! - `message_row`: one message (own, others', a group member's) or system line, and time
//!   dividers.
//! - `input_bar`: the chat's bottom bar: voice, text field, emoji, more or send.
//! - `dialog`: a pop-up over WeChat.
//! - `system`: what is not WeChat's: status bar, gesture bar, launcher, Android's floating
//!   accessibility button; and the single node a hidden tree shows.

mod chat;
mod conversation_list;
mod conversation_row;
mod dialog;
mod frame;
mod input_bar;
mod message_row;
mod node;
mod system;
mod tab_bar;
mod text;

pub use chat::chat_max_scroll;
pub use conversation_list::list_max_scroll;
pub use message_row::{
    BUBBLE_PAD_H, BUBBLE_PAD_V, BUBBLE_TAIL_W, BUBBLE_TAIL_Y, MESSAGE_LINE_UNITS,
    RED_PACKET_BODY_H, bubble_text_left,
};
pub use node::{
    Align, BADGE_RED, BAR_GREY, CHAT_BACKGROUND, Icon, Ink, Node, OWN_BUBBLE_GREEN, Paint, Rect,
    TEXT_DARK, TEXT_GREY, TextSize, TextStyle, WECHAT_GREEN, WHITE, rect,
};
pub use system::hidden_app_window;
pub use text::{BODY as BODY_SIZE, LINE_H, TIME as TIME_SIZE, is_zero_width, width_in_units, wrap};

use super::ids::Ids;
use super::model::{Action, Screen as Showing, WeChat};
use crate::clock::Clock;
use crate::display::{LAYOUT_DENSITY, LAYOUT_WIDTH, Screen};

/// The layout's width, in layout pixels (see [`crate::display`]): every screen is 360 dp wide.
pub const SCREEN_W: i32 = LAYOUT_WIDTH;
/// The height of the real dumps' screen. What sits at the bottom (tab bar, input bar, gesture
/// bar) is written against it and moves with the bottom edge of a screen of another height.
pub const REF_SCREEN_H: i32 = 1608;
pub const STATUS_BAR_BOTTOM: i32 = 76;
pub const ACTION_BAR_BOTTOM: i32 = 162;
/// How far above the bottom edge the tab bar (on the list) or the input bar (in a chat) begins.
const BOTTOM_BAR_H: i32 = REF_SCREEN_H - 1507;
const SCREEN_CENTRE_X: i32 = SCREEN_W / 2;

/// Where the tab bar or the input bar begins on a screen `h` layout pixels high.
pub const fn bottom_bar_top(h: i32) -> i32 {
    h - BOTTOM_BAR_H
}

/// The whole screen, `h` layout pixels high.
const fn full_screen(h: i32) -> Rect {
    rect(0, 0, SCREEN_W, h)
}

/// Which app owns a window; a dump lists windows of each.
pub const WECHAT_PKG: &str = "com.tencent.mm";
pub const SYSTEMUI_PKG: &str = "com.android.systemui";
/// vivo's gesture bar at the bottom edge.
pub const UPSLIDE_PKG: &str = "com.vivo.upslide";
/// vivo's home screen.
pub const LAUNCHER_PKG: &str = "com.bbk.launcher2";

/// Android's own ids inside WeChat's windows: the framework's, not WeChat's, so no UI map
/// names them and they do not change between WeChat builds.
const ANDROID_CONTENT: &str = "android:id/content";
const ANDROID_TEXT1: &str = "android:id/text1";

pub struct BuildOpts<'a> {
    pub ids: &'a Ids,
    /// The display the tree is laid out for; the tree's bounds are in its pixels.
    pub screen: Screen,
    pub clock: &'a Clock,
    /// Put the chat's name in the title bar; real 8.0.x dumps leave it out.
    pub title_text: bool,
    /// Labels of the running services Android's floating accessibility button stands for;
    /// empty when the button is not on screen.
    pub accessibility_button: Vec<&'static str>,
}

impl BuildOpts<'_> {
    /// The screen's height in layout pixels.
    fn h(&self) -> i32 {
        self.screen.layout_height()
    }
}

/// Every window on screen, bottom first: status bar, the app (or launcher), pop-up, gesture bar.
/// Laid out in layout pixels, then scaled to the screen's.
pub fn build_windows(wechat: &WeChat, opts: &BuildOpts<'_>) -> Vec<Node> {
    let mut windows = layout_windows(wechat, opts);
    if opts.screen.density != LAYOUT_DENSITY {
        for w in &mut windows {
            w.scale_to(&opts.screen);
        }
    }
    windows
}

fn layout_windows(wechat: &WeChat, opts: &BuildOpts<'_>) -> Vec<Node> {
    let h = opts.h();
    let mut windows = vec![system::status_bar(opts.clock)];
    if wechat.foreground {
        windows.push(match &wechat.screen {
            Showing::List => conversation_list::list_window(wechat, opts),
            Showing::Chat(name) => match wechat.chat(name) {
                Some(chat) => chat::chat_window(wechat, chat, opts),
                None => conversation_list::list_window(wechat, opts),
            },
        });
        if let Some(popup) = &wechat.popup {
            windows.push(dialog::dialog_window(popup));
        }
    } else {
        windows.push(system::launcher_window(h));
    }
    if !opts.accessibility_button.is_empty() {
        windows.push(system::accessibility_button(&opts.accessibility_button, h));
    }
    windows.push(system::gesture_bar(h));
    windows
}

/// An avatar's colour, derived from the person's name so each person keeps theirs: muted
/// tones, none of them WeChat's bubble green, white or badge red, so a reader that looks for
/// bubbles and badges by colour is not fooled by an avatar.
pub fn avatar_colour(name: &str) -> u32 {
    const TONES: [u32; 8] = [
        0x6A8CAF, 0xB07D62, 0x8E7CC3, 0x5E9E9E, 0xC9A227, 0x7A8B99, 0xA0607A, 0x4F6D8F,
    ];
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    let mut h: u32 = 0x811C_9DC5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    TONES[(h % TONES.len() as u32) as usize]
}

/// The view TalkBack's touch exploration focuses at (x, y): the topmost one under the finger
/// that does something or says something.
pub fn focus_target(windows: &[Node], x: i32, y: i32) -> Option<&Node> {
    let mut found = None;
    for window in windows {
        window.walk(&mut |node| {
            if node.bounds.contains(x, y)
                && (node.clickable || !node.text.is_empty() || !node.desc.is_empty())
            {
                found = Some(node);
            }
        });
    }
    found
}

/// A node in a line of the event log: class, id and what it says.
pub fn describe(node: &Node) -> String {
    let said = if node.text.is_empty() {
        &node.desc
    } else {
        &node.text
    };
    format!("{} {} {said:?}", node.class, node.id)
}

/// The action the topmost view under (x, y) takes: the last match in pre-order wins,
/// because later siblings and later windows are drawn over earlier ones.
pub fn hit_test(windows: &[Node], x: i32, y: i32) -> Option<Action> {
    let mut found = None;
    for window in windows {
        window.walk(&mut |node| {
            if node.bounds.contains(x, y)
                && let Some(action) = &node.action
            {
                found = Some(action.clone());
            }
        });
    }
    found
}
