//! The chat's bottom bar: the voice toggle, the text field (with dictation inside it), emoji,
//! and "more", which becomes the send button while the field holds text.

use super::node::{
    BUTTON, CLICKABLE, EDIT_TEXT, FOCUSABLE, FRAME_LAYOUT, IMAGE_BUTTON, IMAGE_VIEW, Icon, Ink,
    LINEAR_LAYOUT, LONG_CLICKABLE, NO_FLAGS, Node, Paint, RELATIVE_LAYOUT, SCROLL_VIEW, VIEW, nest,
    rect, wechat_node,
};
use super::{REF_SCREEN_H, SCREEN_W, bottom_bar_top};

const BOTTOM_BAR_TOP: i32 = bottom_bar_top(REF_SCREEN_H);
const SCREEN_H: i32 = REF_SCREEN_H;
use crate::wechat::ids::Ids;
use crate::wechat::model::{Action, Chat};

// The bar's three heights, copied from the real dump: buttons, the field's row, icons.
const BUTTON_TOP: i32 = 1518;
const BUTTON_BOTTOM: i32 = 1598;
const FIELD_TOP: i32 = 1522;
const FIELD_BOTTOM: i32 = 1594;
const ICON_TOP: i32 = 1529;
const ICON_BOTTOM: i32 = 1587;
/// Where the field's column begins and the text box inside it.
const FIELD_COLUMN_LEFT: i32 = 72;
const EDIT_LEFT: i32 = 86;

pub(super) fn input_bar(chat: &Chat, focused: bool, ids: &Ids, h: i32) -> Node {
    // Written against the real dump's screen; a screen of another height moves it.
    input_bar_at_ref(chat, focused, ids).translated(h - REF_SCREEN_H)
}

fn input_bar_at_ref(chat: &Chat, focused: bool, ids: &Ids) -> Node {
    let layout = &ids.layout.input_bar;
    let has_text = !chat.draft.is_empty();
    // With text the send button is wider than the "+" button it replaces, so the field's
    // column and the slot at the right both start further left.
    let (field_right, more_left) = if has_text { (536, 594) } else { (576, 634) };
    let edit_right = field_right - 14;
    let mut edit = wechat_node(
        EDIT_TEXT,
        &ids.input,
        rect(EDIT_LEFT, BUTTON_TOP, edit_right, BUTTON_BOTTOM),
        CLICKABLE | LONG_CLICKABLE | FOCUSABLE,
        1,
    )
    .marked_naf()
    .with_text(chat.draft.clone())
    .on_tap(Action::FocusInput)
    .painted(Paint::Field);
    edit.focused = focused;
    let field = rect(EDIT_LEFT, FIELD_TOP, edit_right, FIELD_BOTTOM);
    // The real dump has the input id twice: on a FrameLayout and on the EditText inside it.
    let edit_box = nest(vec![
        wechat_node(SCROLL_VIEW, &layout.field_scroll, field, FOCUSABLE, 1),
        wechat_node(LINEAR_LAYOUT, "", field, NO_FLAGS, 1),
        wechat_node(LINEAR_LAYOUT, &layout.field_box, field, NO_FLAGS, 2),
        wechat_node(FRAME_LAYOUT, &ids.input, field, NO_FLAGS, 2),
        edit,
    ]);
    let voice_area = rect(field_right - 112, FIELD_TOP, field_right - 18, FIELD_BOTTOM);
    let voice_hint = nest(vec![
        wechat_node(FRAME_LAYOUT, "", voice_area, NO_FLAGS, 1),
        wechat_node(VIEW, "", voice_area, NO_FLAGS, 1),
    ]);
    let dictate_area = rect(field_right - 76, ICON_TOP, voice_area.right, ICON_BOTTOM);
    let dictate = nest(vec![
        wechat_node(LINEAR_LAYOUT, "", dictate_area, NO_FLAGS, 2).at_index(1),
        wechat_node(
            FRAME_LAYOUT,
            &layout.dictate_frame,
            dictate_area,
            NO_FLAGS,
            3,
        ),
        wechat_node(FRAME_LAYOUT, "", dictate_area, NO_FLAGS, 1),
        wechat_node(
            FRAME_LAYOUT,
            &layout.dictate,
            rect(field_right - 87, BUTTON_TOP, field_right - 7, BUTTON_BOTTOM),
            CLICKABLE | FOCUSABLE,
            1,
        )
        .with_desc("听写")
        .on_tap(Action::Absorb),
    ]);
    let voice_and_dictate = wechat_node(
        FRAME_LAYOUT,
        &layout.voice_and_dictate,
        voice_area,
        NO_FLAGS,
        2,
    )
    .at_index(1)
    .with_children(vec![voice_hint, dictate]);
    let field_column = nest(vec![
        wechat_node(
            LINEAR_LAYOUT,
            &layout.field_column,
            rect(FIELD_COLUMN_LEFT, FIELD_TOP, field_right, FIELD_BOTTOM),
            NO_FLAGS,
            2,
        )
        .at_index(1),
        wechat_node(RELATIVE_LAYOUT, &layout.field_group, field, NO_FLAGS, 1)
            .with_children(vec![edit_box, voice_and_dictate]),
    ]);
    let voice_toggle = nest(vec![
        wechat_node(
            RELATIVE_LAYOUT,
            "",
            rect(0, FIELD_TOP, FIELD_COLUMN_LEFT, FIELD_BOTTOM),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(0, ICON_TOP, FIELD_COLUMN_LEFT, FIELD_BOTTOM),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            IMAGE_BUTTON,
            &layout.voice_toggle,
            rect(3, BUTTON_TOP, 83, BUTTON_BOTTOM),
            CLICKABLE | FOCUSABLE,
            2,
        )
        .with_desc("切换到按住说话")
        .on_tap(Action::Absorb)
        .painted(Paint::Icon(Icon::Voice)),
    ]);
    let emoji = wechat_node(
        RELATIVE_LAYOUT,
        "",
        rect(field_right, ICON_TOP, more_left, ICON_BOTTOM),
        NO_FLAGS,
        3,
    )
    .at_index(2)
    .with_children(vec![
        wechat_node(
            IMAGE_BUTTON,
            &layout.emoji,
            rect(field_right - 11, BUTTON_TOP, more_left + 11, BUTTON_BOTTOM),
            CLICKABLE | FOCUSABLE,
            1,
        )
        .with_desc("表情")
        .on_tap(Action::Absorb)
        .painted(Paint::Icon(Icon::Emoji)),
    ]);
    let more_or_send = if has_text {
        vec![
            wechat_node(
                BUTTON,
                &ids.send_button,
                rect(more_left + 6, 1532, 708, 1584),
                CLICKABLE | FOCUSABLE,
                1,
            )
            .with_text("发送")
            .on_tap(Action::Send)
            .painted(Paint::Button),
        ]
    } else {
        vec![
            wechat_node(
                IMAGE_BUTTON,
                &layout.more,
                rect(637, BUTTON_TOP, 717, BUTTON_BOTTOM),
                CLICKABLE | FOCUSABLE,
                1,
            )
            .with_desc("更多功能按钮，已折叠")
            .on_tap(Action::Absorb)
            .painted(Paint::Icon(Icon::Plus)),
            wechat_node(
                IMAGE_VIEW,
                &layout.more_dot,
                rect(692, ICON_TOP, 706, 1543),
                NO_FLAGS,
                2,
            )
            .painted(Paint::Dot),
        ]
    };
    let slot = rect(more_left, FIELD_TOP, SCREEN_W, FIELD_BOTTOM);
    let more_slot = wechat_node(LINEAR_LAYOUT, &layout.more_slot, slot, NO_FLAGS, 4)
        .at_index(3)
        .with_children(vec![
            wechat_node(RELATIVE_LAYOUT, "", slot, NO_FLAGS, 2).with_children(more_or_send),
        ]);
    let controls = wechat_node(
        LINEAR_LAYOUT,
        &layout.controls,
        rect(0, BOTTOM_BAR_TOP + 1, SCREEN_W, FIELD_BOTTOM),
        NO_FLAGS,
        2,
    )
    .with_children(vec![voice_toggle, field_column, emoji, more_slot]);
    let bar = rect(0, BOTTOM_BAR_TOP, SCREEN_W, SCREEN_H);
    let controls_band = rect(0, BOTTOM_BAR_TOP, SCREEN_W, FIELD_BOTTOM);
    nest(vec![
        wechat_node(FRAME_LAYOUT, &layout.frame, bar, NO_FLAGS, 2)
            .at_index(1)
            .painted(Paint::Fill(Ink::Bar))
            .on_tap(Action::Absorb),
        wechat_node(RELATIVE_LAYOUT, &layout.container, bar, NO_FLAGS, 1),
        wechat_node(LINEAR_LAYOUT, &layout.column, bar, NO_FLAGS, 2).at_index(1),
        wechat_node(LINEAR_LAYOUT, &layout.band, controls_band, NO_FLAGS, 1),
        wechat_node(
            LINEAR_LAYOUT,
            &layout.band_inner,
            controls_band,
            NO_FLAGS,
            1,
        ),
        controls,
    ])
}
