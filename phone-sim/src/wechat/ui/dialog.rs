//! A pop-up over WeChat (an update prompt, a permission question): title, text, and a row of
//! buttons whose last one confirms.

use super::ANDROID_CONTENT;
use super::node::{
    BUTTON, CLICKABLE, FOCUSABLE, FRAME_LAYOUT, Ink, LINEAR_LAYOUT, NO_FLAGS, Node, Paint,
    TEXT_VIEW, TextSize, TextStyle, nest, rect, wechat_node,
};
use super::text::{BODY, BODY_TEXT_PX, wrap};
use crate::wechat::model::{Action, Popup};

const LEFT: i32 = 60;
const RIGHT: i32 = 660;
const TOP: i32 = 640;
/// Title and text keep this far from the dialog's sides.
const TEXT_MARGIN: i32 = 48;
const TEXT_TOP: i32 = TOP + 90;
const TEXT_LINE_UNITS: i32 = 36;
const TEXT_LINE_H: i32 = 40;
/// Space between the text and the buttons.
const TEXT_BOTTOM_GAP: i32 = 30;
const BUTTON_ROW_H: i32 = 100;
const TEXT_SIZE: TextSize = TextSize {
    unit_px: BODY_TEXT_PX,
    line_h: TEXT_LINE_H,
};

pub(super) fn dialog_window(popup: &Popup) -> Node {
    let text_lines = wrap(&popup.text, TEXT_LINE_UNITS).len() as i32;
    let text_bottom = TEXT_TOP + TEXT_LINE_H * text_lines;
    let buttons_top = text_bottom + TEXT_BOTTOM_GAP;
    let bottom = buttons_top + BUTTON_ROW_H;
    let button_w = (RIGHT - LEFT) / popup.buttons.len().max(1) as i32;
    let last = popup.buttons.len();
    let buttons = popup
        .buttons
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let button_left = LEFT + button_w * i as i32;
            // The confirming (last) button in WeChat's link blue.
            let ink = if i + 1 == last { Ink::Link } else { Ink::Text };
            wechat_node(
                BUTTON,
                "",
                rect(button_left, buttons_top, button_left + button_w, bottom),
                CLICKABLE | FOCUSABLE,
                i as u32 + 1,
            )
            .with_text(label.clone())
            .on_tap(Action::PopupButton(i))
            .painted(Paint::Text(TextStyle::new(ink, BODY).centred()))
        })
        .collect();
    let title = wechat_node(
        TEXT_VIEW,
        "",
        rect(LEFT + TEXT_MARGIN, TOP + 40, RIGHT - TEXT_MARGIN, TOP + 82),
        NO_FLAGS,
        1,
    )
    .with_text(popup.title.clone())
    .painted(Paint::Text(TextStyle::new(Ink::Text, BODY)));
    let text = wechat_node(
        TEXT_VIEW,
        "",
        rect(
            LEFT + TEXT_MARGIN,
            TEXT_TOP,
            RIGHT - TEXT_MARGIN,
            text_bottom,
        ),
        NO_FLAGS,
        2,
    )
    .with_text(popup.text.clone())
    .painted(Paint::Text(
        TextStyle::new(Ink::TextGrey, TEXT_SIZE).wrapped(TEXT_LINE_UNITS),
    ));
    let whole = rect(LEFT, TOP, RIGHT, bottom);
    let button_row = wechat_node(
        LINEAR_LAYOUT,
        "",
        rect(LEFT, buttons_top, RIGHT, bottom),
        NO_FLAGS,
        3,
    )
    .with_children(buttons);
    let panel = wechat_node(LINEAR_LAYOUT, "", whole, NO_FLAGS, 1)
        .with_children(vec![title, text, button_row]);
    let root = wechat_node(FRAME_LAYOUT, "", whole, NO_FLAGS, 0).painted(Paint::Fill(Ink::Dialog));
    nest(vec![
        root,
        wechat_node(FRAME_LAYOUT, ANDROID_CONTENT, whole, NO_FLAGS, 1),
        panel,
    ])
}
