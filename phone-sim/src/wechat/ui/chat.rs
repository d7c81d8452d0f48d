//! A chat (`ChattingUI`): the action bar (back, with the other chats' unread count; the title
//! bar, which real 8.0.x dumps leave empty; "more"), the message list between the bars, and
//! the input bar; with how far the list scrolls.

use super::frame::app_frame;
use super::input_bar::input_bar;
use super::message_row::{message_row, row_height};
use super::node::{
    CLICKABLE, FOCUSABLE, FRAME_LAYOUT, IMAGE_VIEW, Icon, Ink, LINEAR_LAYOUT, LONG_CLICKABLE,
    NO_FLAGS, Node, Paint, RECYCLER_VIEW, RELATIVE_LAYOUT, SCROLLABLE, TEXT_VIEW, TextStyle,
    VIEW_GROUP, nest, rect, wechat_node,
};
use super::text::{BODY, BODY_TEXT_PX, width_in_units};
use super::{
    ACTION_BAR_BOTTOM, BuildOpts, SCREEN_CENTRE_X, SCREEN_W, STATUS_BAR_BOTTOM, bottom_bar_top,
    full_screen,
};
use crate::wechat::model::{Action, Chat, WeChat};

/// How much of the message list shows at once on a screen `h` layout pixels high.
const fn viewport_h(h: i32) -> i32 {
    bottom_bar_top(h) - ACTION_BAR_BOTTOM
}
/// Longer names are cut in the title.
const TITLE_MAX_UNITS: i32 = 24;

fn content_height(chat: &Chat) -> i32 {
    (0..chat.messages.len()).map(|i| row_height(chat, i)).sum()
}

/// How far the chat scrolls, in layout pixels, on a screen `h` layout pixels high.
pub fn chat_max_scroll(chat: &Chat, h: i32) -> i32 {
    (content_height(chat) - viewport_h(h)).max(0)
}

pub(super) fn chat_window(wechat: &WeChat, chat: &Chat, opts: &BuildOpts<'_>) -> Node {
    let ids = opts.ids;
    let layout = &ids.layout.chat;
    let h = opts.h();
    let bottom_bar_top = bottom_bar_top(h);
    let full_screen = full_screen(h);
    let message_area = rect(0, ACTION_BAR_BOTTOM, SCREEN_W, bottom_bar_top);
    let scroll = wechat.chat_scroll.clamp(0, chat_max_scroll(chat, h));

    let mut rows = Vec::new();
    let mut y = ACTION_BAR_BOTTOM - scroll;
    for i in 0..chat.messages.len() {
        let row_h = row_height(chat, i);
        if y + row_h > ACTION_BAR_BOTTOM && y < bottom_bar_top {
            let index = rows.len() as u32;
            if let Some(row) = message_row(chat, i, y, opts).clipped(&message_area) {
                rows.push(row.at_index(index));
            }
        }
        y += row_h;
    }
    let others_unread: u32 = wechat
        .chats
        .iter()
        .filter(|c| !c.muted && c.name != chat.name)
        .map(|c| c.unread)
        .sum();

    let list = wechat_node(
        RECYCLER_VIEW,
        &ids.message_list,
        message_area,
        LONG_CLICKABLE | SCROLLABLE | FOCUSABLE,
        2,
    )
    .at_index(1)
    .on_tap(Action::Absorb)
    .with_children(rows);
    let list_frame = wechat_node(FRAME_LAYOUT, "", message_area, NO_FLAGS, 2)
        .at_index(3)
        .with_children(vec![
            nest(vec![
                wechat_node(FRAME_LAYOUT, "", message_area, NO_FLAGS, 2),
                wechat_node(
                    FRAME_LAYOUT,
                    &layout.message_list_frame,
                    message_area,
                    NO_FLAGS,
                    1,
                ),
                list,
            ]),
            wechat_node(FRAME_LAYOUT, "", message_area, FOCUSABLE, 1).at_index(1),
        ]);
    let message_layers = wechat_node(
        FRAME_LAYOUT,
        &layout.message_layers,
        message_area,
        NO_FLAGS,
        1,
    )
    .with_children(vec![
        wechat_node(
            FRAME_LAYOUT,
            &layout.first_overlay,
            message_area,
            NO_FLAGS,
            7,
        )
        .at_index(1),
        wechat_node(
            FRAME_LAYOUT,
            &layout.second_overlay,
            message_area,
            NO_FLAGS,
            8,
        )
        .at_index(2),
        list_frame,
        wechat_node(FRAME_LAYOUT, &layout.image_layer, message_area, NO_FLAGS, 1)
            .at_index(4)
            .with_children(vec![wechat_node(
                IMAGE_VIEW,
                &layout.image_layer_view,
                message_area,
                NO_FLAGS,
                1,
            )]),
        wechat_node(
            LINEAR_LAYOUT,
            &layout.top_right_chip,
            rect(510, 187, SCREEN_W, 267),
            CLICKABLE | FOCUSABLE,
            12,
        )
        .at_index(5)
        .marked_naf(),
    ]);
    let below_action_bar = rect(0, ACTION_BAR_BOTTOM, SCREEN_W, h);
    let messages_and_input = wechat_node(
        LINEAR_LAYOUT,
        &layout.messages_and_input,
        below_action_bar,
        NO_FLAGS,
        1,
    )
    .at_index(1)
    .with_children(vec![
        message_layers,
        input_bar(chat, wechat.input_focused, ids, h),
    ]);
    let below_frame = wechat_node(
        FRAME_LAYOUT,
        &layout.below_action_bar,
        below_action_bar,
        NO_FLAGS,
        3,
    )
    .at_index(1)
    .with_children(vec![
        wechat_node(
            FRAME_LAYOUT,
            &layout.below_action_bar_background,
            below_action_bar,
            NO_FLAGS,
            2,
        ),
        messages_and_input,
    ]);
    let chat_root = wechat_node(
        LINEAR_LAYOUT,
        &layout.root,
        full_screen,
        CLICKABLE | LONG_CLICKABLE | FOCUSABLE,
        1,
    )
    .painted(Paint::Fill(Ink::ChatBackground))
    .on_tap(Action::Absorb)
    .with_children(vec![action_bar(chat, others_unread, opts), below_frame]);
    app_frame(
        ids,
        h,
        nest(vec![
            wechat_node(LINEAR_LAYOUT, &layout.frame, full_screen, NO_FLAGS, 3),
            wechat_node(FRAME_LAYOUT, &layout.focus_frame, full_screen, FOCUSABLE, 1),
            wechat_node(
                FRAME_LAYOUT,
                &ids.layout.frame.page,
                full_screen,
                NO_FLAGS,
                1,
            ),
            wechat_node(RELATIVE_LAYOUT, "", full_screen, NO_FLAGS, 1),
            chat_root,
        ]),
    )
}

/// Back (with the unread count of the other chats beside it), the title bar, "more".
fn action_bar(chat: &Chat, others_unread: u32, opts: &BuildOpts<'_>) -> Node {
    let ids = opts.ids;
    let layout = &ids.layout.chat;
    let bar_ids = &ids.layout.action_bar;
    let bar = rect(0, STATUS_BAR_BOTTOM, SCREEN_W, ACTION_BAR_BOTTOM);
    let back_area = rect(0, bar.top, 122, bar.bottom);
    let mut back = vec![
        wechat_node(
            IMAGE_VIEW,
            &ids.chat_back,
            rect(0, bar.top, 57, bar.bottom),
            NO_FLAGS,
            1,
        )
        .with_desc("返回")
        .painted(Paint::Icon(Icon::Back)),
    ];
    if others_unread > 0 {
        back.push(
            wechat_node(
                TEXT_VIEW,
                &ids.chat_back_unread,
                rect(57, 101, 93, 137),
                NO_FLAGS,
                2,
            )
            .with_text(others_unread.to_string())
            .painted(Paint::Badge),
        );
    }
    let up = wechat_node(
        LINEAR_LAYOUT,
        &bar_ids.up,
        back_area,
        CLICKABLE | FOCUSABLE,
        1,
    )
    .on_tap(Action::Back)
    .with_children(back);
    let (title_top, title_bottom) = (100, 137);
    let mut title_bar = wechat_node(
        LINEAR_LAYOUT,
        &ids.chat_title_bar,
        rect(192, title_top, 528, title_bottom),
        FOCUSABLE,
        1,
    );
    if !opts.title_text {
        // Real 8.0.x dumps leave the name out, but the screen shows it.
        title_bar = title_bar
            .with_screen_text(super::text::ellipsize(&chat.name, TITLE_MAX_UNITS))
            .painted(Paint::Text(TextStyle::new(Ink::Text, BODY).centred()));
    }
    if opts.title_text {
        let title_w = width_in_units(&chat.name).min(TITLE_MAX_UNITS) * BODY_TEXT_PX;
        title_bar = title_bar.with_children(vec![
            wechat_node(
                TEXT_VIEW,
                &ids.chat_title,
                rect(
                    SCREEN_CENTRE_X - title_w / 2,
                    title_top,
                    SCREEN_CENTRE_X + title_w / 2,
                    title_bottom,
                ),
                NO_FLAGS,
                1,
            )
            .with_text(chat.name.clone())
            .painted(Paint::Text(TextStyle::new(Ink::Text, BODY).centred())),
        ]);
    }
    let right = rect(619, bar.top, SCREEN_W, bar.bottom);
    let more = nest(vec![
        wechat_node(LINEAR_LAYOUT, &bar_ids.actions, right, NO_FLAGS, 3),
        wechat_node(LINEAR_LAYOUT, &bar_ids.actions_inner, right, NO_FLAGS, 1),
        wechat_node(LINEAR_LAYOUT, "", right, NO_FLAGS, 1),
        wechat_node(RELATIVE_LAYOUT, "", right, NO_FLAGS, 7),
        wechat_node(
            IMAGE_VIEW,
            &layout.more_info,
            right,
            CLICKABLE | FOCUSABLE,
            1,
        )
        .with_desc("更多信息")
        .on_tap(Action::Absorb)
        .painted(Paint::Icon(Icon::More)),
    ]);
    let content = wechat_node(
        RELATIVE_LAYOUT,
        &layout.action_bar_content,
        bar,
        NO_FLAGS,
        2,
    )
    .with_children(vec![
        wechat_node(LINEAR_LAYOUT, "", back_area, NO_FLAGS, 1).with_children(vec![up]),
        wechat_node(
            LINEAR_LAYOUT,
            &bar_ids.title_group,
            rect(91, bar.top, 629, bar.bottom),
            NO_FLAGS,
            2,
        )
        .with_children(vec![title_bar]),
        more,
    ]);
    nest(vec![
        wechat_node(FRAME_LAYOUT, &bar_ids.frame, bar, NO_FLAGS, 4),
        wechat_node(VIEW_GROUP, &bar_ids.view, bar, NO_FLAGS, 1).on_tap(Action::Absorb),
        content,
    ])
}
