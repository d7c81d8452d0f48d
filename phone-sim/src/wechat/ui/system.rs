//! Windows that are not WeChat's, as the real vivo phone shows them: System UI's status bar
//! (first in a dump), the gesture bar (last), the launcher while WeChat is in the background,
//! Android's floating accessibility button; and the single empty node WeChat ≥ 8.0.55 shows
//! uiautomator in place of its tree.

use super::node::{
    CLICKABLE, FOCUSABLE, FRAME_LAYOUT, IMAGE_VIEW, Icon, Ink, LINEAR_LAYOUT, NO_FLAGS, Node,
    Paint, RECYCLER_VIEW, RELATIVE_LAYOUT, Rect, TEXT_VIEW, TextStyle, nest, package_node, rect,
    wechat_node,
};
use super::{
    LAUNCHER_PKG, REF_SCREEN_H, SCREEN_W, STATUS_BAR_BOTTOM, SYSTEMUI_PKG, UPSLIDE_PKG, full_screen,
};

/// What sits at the bottom is written against the real dump's screen and moves with the
/// bottom edge of a screen of another height.
const SCREEN_H: i32 = REF_SCREEN_H;
use super::text::TIME;
use crate::clock::Clock;
use crate::wechat::model::Action;

// System UI's and vivo's ids, copied from the real dumps.
const STATUS_BAR_ID: &str = "status_bar";
const STATUS_BAR_CONTAINER_ID: &str = "status_bar_container";
const STATUS_BAR_CONTENTS_ID: &str = "status_bar_contents";
const STATUS_BAR_START_SIDE_ID: &str = "status_bar_start_side_container";
const STATUS_BAR_ANIMATION_ID: &str = "status_bar_launch_animation_container";
const CLOCK_ID: &str = "clock";
const GESTURE_HANDLE_ID: &str = "indicator_center";

const GESTURE_BAR_TOP: i32 = 1572;

fn system_ui_node(class: &'static str, id: &str, bounds: Rect, drawing_order: u32) -> Node {
    package_node(SYSTEMUI_PKG, class, id, bounds, NO_FLAGS, drawing_order)
}

pub(super) fn status_bar(clock: &Clock) -> Node {
    let hhmm = clock.hhmm(clock.now());
    let bar = rect(0, 0, SCREEN_W, STATUS_BAR_BOTTOM);
    let clock_view = system_ui_node(TEXT_VIEW, CLOCK_ID, rect(40, 27, 117, 57), 2)
        .with_text(hhmm.clone())
        .with_desc(hhmm)
        .painted(Paint::Text(TextStyle::new(Ink::Text, TIME)));
    let start_side = system_ui_node(
        FRAME_LAYOUT,
        STATUS_BAR_START_SIDE_ID,
        rect(40, 8, 332, 76),
        1,
    )
    .with_children(vec![clock_view]);
    // The real dump gives the battery icon no class.
    let battery = system_ui_node("", "", rect(638, 30, 680, 54), 1)
        .with_desc("电池电量为百分之 80。")
        .painted(Paint::Icon(Icon::Battery));
    let end_side =
        system_ui_node(RELATIVE_LAYOUT, "", rect(388, 8, 680, 76), 2).with_children(vec![battery]);
    let contents = system_ui_node(
        LINEAR_LAYOUT,
        STATUS_BAR_CONTENTS_ID,
        rect(40, 0, 680, 76),
        2,
    )
    .with_children(vec![start_side, end_side]);
    let container = nest(vec![
        system_ui_node(FRAME_LAYOUT, STATUS_BAR_CONTAINER_ID, bar, 2),
        system_ui_node(FRAME_LAYOUT, STATUS_BAR_ID, bar, 1),
        contents,
    ]);
    let animation = system_ui_node(FRAME_LAYOUT, STATUS_BAR_ANIMATION_ID, bar, 1);
    system_ui_node(FRAME_LAYOUT, "", bar, 0)
        .with_children(vec![animation, container])
        // The status bar takes the colour of the app's title bar under it, as WeChat sets it.
        .painted(Paint::Fill(Ink::ChatBackground))
}

pub(super) fn gesture_bar(h: i32) -> Node {
    gesture_bar_at_ref().translated(h - REF_SCREEN_H)
}

fn gesture_bar_at_ref() -> Node {
    let bar = rect(0, GESTURE_BAR_TOP, SCREEN_W, SCREEN_H);
    let upslide = |class, id: &str, bounds, drawing_order| {
        package_node(UPSLIDE_PKG, class, id, bounds, NO_FLAGS, drawing_order)
    };
    let handle = upslide(IMAGE_VIEW, GESTURE_HANDLE_ID, rect(214, 1598, 506, 1608), 2)
        .painted(Paint::Fill(Ink::GestureHandle));
    nest(vec![
        upslide(FRAME_LAYOUT, "", bar, 0),
        upslide(FRAME_LAYOUT, "", bar, 1),
        upslide(LINEAR_LAYOUT, "", bar, 1),
        handle,
    ])
}

/// The home screen: WeChat's icon (a tap launches it) and one other app's.
pub(super) fn launcher_window(h: i32) -> Node {
    let launcher = |class, bounds, flags, drawing_order| {
        package_node(LAUNCHER_PKG, class, "", bounds, flags, drawing_order)
    };
    let wechat = launcher(
        TEXT_VIEW,
        rect(40, 1200, 160, 1330),
        CLICKABLE | FOCUSABLE,
        1,
    )
    .with_text("微信")
    .with_desc("微信")
    .on_tap(Action::Launch)
    .painted(Paint::Fill(Ink::Brand));
    let settings = launcher(
        TEXT_VIEW,
        rect(200, 1200, 320, 1330),
        CLICKABLE | FOCUSABLE,
        2,
    )
    .with_text("设置")
    .with_desc("设置")
    .on_tap(Action::Absorb)
    .painted(Paint::Icon(Icon::App));
    launcher(FRAME_LAYOUT, full_screen(h), NO_FLAGS, 0)
        .painted(Paint::Fill(Ink::Wallpaper))
        .with_children(vec![wechat, settings])
}

/// Where the floating accessibility button sits: docked to the right edge just above the
/// gesture bar, one 44 dp (88 px) icon per target. That is over the right end of WeChat's
/// input bar, where the send button is, which is the case DESIGN §4 warns about.
pub const A11Y_BUTTON_LEFT: i32 = SCREEN_W - 88;
pub const A11Y_BUTTON_BOTTOM: i32 = 1568;
const A11Y_ICON: i32 = 88;

/// Android 12+'s floating accessibility menu, a System UI window. Its classes and geometry
/// are the sim's: no real dump with the button was at hand.
pub(super) fn accessibility_button(labels: &[&'static str], h: i32) -> Node {
    accessibility_button_at_ref(labels).translated(h - REF_SCREEN_H)
}

fn accessibility_button_at_ref(labels: &[&'static str]) -> Node {
    let n = i32::try_from(labels.len()).unwrap_or(1).max(1);
    let whole = rect(
        A11Y_BUTTON_LEFT,
        A11Y_BUTTON_BOTTOM - n * A11Y_ICON,
        SCREEN_W,
        A11Y_BUTTON_BOTTOM,
    );
    let icons = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let top = whole.top + i32::try_from(i).unwrap_or(0) * A11Y_ICON;
            package_node(
                SYSTEMUI_PKG,
                IMAGE_VIEW,
                "",
                rect(A11Y_BUTTON_LEFT, top, SCREEN_W, top + A11Y_ICON),
                CLICKABLE | FOCUSABLE,
                u32::try_from(i).unwrap_or(0) + 1,
            )
            .with_desc(*label)
            .on_tap(Action::AccessibilityButton)
            .painted(Paint::Fill(Ink::AccessibilityButton))
        })
        .collect();
    nest(vec![
        system_ui_node(FRAME_LAYOUT, "", whole, 0),
        system_ui_node(RECYCLER_VIEW, "", whole, 1).with_children(icons),
    ])
}

/// What WeChat ≥ 8.0.55 shows uiautomator: one empty node, no tree.
pub fn hidden_app_window() -> Node {
    wechat_node(FRAME_LAYOUT, "", rect(0, 0, 0, 0), NO_FLAGS, 0)
}
