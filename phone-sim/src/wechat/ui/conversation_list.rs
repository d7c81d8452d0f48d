//! The 微信 tab (`LauncherUI`): the action bar with `微信(N)`, the conversation list (whose
//! first child is a copy of the title bar that scrolls away with the rows) and the tab bar.

use super::conversation_row::{ROW_H, conversation_row};
use super::frame::app_frame;
use super::node::{
    BUTTON, CLICKABLE, FOCUSABLE, FRAME_LAYOUT, IMAGE_VIEW, Icon, Ink, LINEAR_LAYOUT, LIST_VIEW,
    LONG_CLICKABLE, NO_FLAGS, Node, Paint, RELATIVE_LAYOUT, SCROLLABLE, TEXT_VIEW, TextStyle, VIEW,
    VIEW_GROUP, nest, rect, wechat_node,
};
use super::tab_bar::tab_bar;
use super::text::{BODY, BODY_TEXT_PX, width_in_units};
use super::{
    ACTION_BAR_BOTTOM, ANDROID_CONTENT, ANDROID_TEXT1, BuildOpts, SCREEN_CENTRE_X, SCREEN_W,
    STATUS_BAR_BOTTOM, bottom_bar_top, full_screen,
};
use crate::wechat::ids::Ids;
use crate::wechat::model::{Action, WeChat, ordered};

/// The title bar's copy at the top of the list, as tall as status and action bar together.
const TITLE_COPY_H: i32 = ACTION_BAR_BOTTOM;
/// The real list does not number its rows from 0: a row's `index` and `drawing-order` are
/// these plus the number of children before it (the title copy counts), so that the first
/// row under the title copy is index 13, drawn 16th, as in the real dump.
const ROW_INDEX_BASE: u32 = 12;
const ROW_DRAWING_ORDER_BASE: u32 = 15;

/// How far the list scrolls, in layout pixels, on a screen `h` layout pixels high.
pub fn list_max_scroll(wechat: &WeChat, h: i32) -> i32 {
    (TITLE_COPY_H + ROW_H * wechat.chats.len() as i32 - bottom_bar_top(h)).max(0)
}

/// Unread total shown in the title (`微信(N)`) and on the tab: muted chats do not count.
pub(super) fn unread_total(wechat: &WeChat) -> u32 {
    wechat
        .chats
        .iter()
        .filter(|c| !c.muted)
        .map(|c| c.unread)
        .sum()
}

fn title(wechat: &WeChat) -> String {
    match unread_total(wechat) {
        0 => "微信".to_string(),
        unread => format!("微信({unread})"),
    }
}

pub(super) fn list_window(wechat: &WeChat, opts: &BuildOpts<'_>) -> Node {
    let ids = opts.ids;
    let screen_ids = &ids.layout.main_screen;
    let h = opts.h();
    let full_screen = full_screen(h);
    let scroll = wechat.list_scroll.min(list_max_scroll(wechat, h));
    let title = title(wechat);

    let mut list_children = Vec::new();
    if let Some(copy) = scrolling_title_copy(ids, &title, -scroll).clipped(&full_screen) {
        list_children.push(copy);
    }
    for (i, chat) in ordered(&wechat.chats).into_iter().enumerate() {
        let y = TITLE_COPY_H + ROW_H * i as i32 - scroll;
        if y + ROW_H <= 0 || y >= h {
            continue;
        }
        let shown = list_children.len() as u32;
        let row = conversation_row(
            chat,
            y,
            opts,
            ROW_INDEX_BASE + shown,
            ROW_DRAWING_ORDER_BASE + shown,
        );
        if let Some(row) = row.clipped(&full_screen) {
            list_children.push(row);
        }
    }
    let list = wechat_node(
        LIST_VIEW,
        &ids.conversation_list,
        full_screen,
        LONG_CLICKABLE | SCROLLABLE | FOCUSABLE,
        3,
    )
    .painted(Paint::Fill(Ink::ListBackground))
    .on_tap(Action::Absorb)
    .with_children(list_children);

    let list_frame = wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 1).with_children(vec![
        nest(vec![
            wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 2),
            wechat_node(
                RELATIVE_LAYOUT,
                &screen_ids.list_container,
                full_screen,
                NO_FLAGS,
                1,
            ),
            list,
        ]),
        wechat_node(FRAME_LAYOUT, "", full_screen, FOCUSABLE, 1).at_index(1),
    ]);
    let chats_page = nest(vec![
        wechat_node(
            VIEW_GROUP,
            &screen_ids.chats_page,
            full_screen,
            FOCUSABLE,
            1,
        ),
        wechat_node(
            FRAME_LAYOUT,
            &ids.layout.frame.page,
            full_screen,
            NO_FLAGS,
            1,
        ),
        list_frame,
    ]);
    let pages = nest(vec![
        wechat_node(FRAME_LAYOUT, ANDROID_CONTENT, full_screen, NO_FLAGS, 1),
        wechat_node(FRAME_LAYOUT, &screen_ids.pages, full_screen, NO_FLAGS, 1),
        wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 1)
            .with_children(vec![chats_page, tab_bar(ids, unread_total(wechat), h)]),
    ]);
    let main_screen = wechat_node(VIEW_GROUP, &screen_ids.root, full_screen, NO_FLAGS, 1)
        .with_children(vec![pages, action_bar(ids, title)]);
    app_frame(
        ids,
        h,
        wechat_node(FRAME_LAYOUT, &screen_ids.frame, full_screen, NO_FLAGS, 1)
            .with_children(vec![main_screen]),
    )
}

/// The action bar over the list: `微信(N)` centred, search and "more" at the right.
fn action_bar(ids: &Ids, title: String) -> Node {
    let screen_ids = &ids.layout.main_screen;
    let bar_ids = &ids.layout.action_bar;
    let bar = rect(0, STATUS_BAR_BOTTOM, SCREEN_W, ACTION_BAR_BOTTOM);
    let title_w = width_in_units(&title) * BODY_TEXT_PX;
    let (title_left, title_right) = (SCREEN_CENTRE_X - title_w / 2, SCREEN_CENTRE_X + title_w / 2);
    let (text_top, text_bottom) = (98, 140);
    let title_group = nest(vec![
        wechat_node(
            RELATIVE_LAYOUT,
            &bar_ids.title_group,
            rect(139, bar.top, 581, bar.bottom),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(title_left, bar.top, title_right, bar.bottom),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(title_left, text_top, title_right, text_bottom),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            TEXT_VIEW,
            ANDROID_TEXT1,
            rect(title_left, text_top, title_right, text_bottom),
            NO_FLAGS,
            1,
        )
        .with_text(title)
        .painted(Paint::Text(TextStyle::new(Ink::Text, BODY).centred())),
    ]);
    let search = wechat_node(
        RELATIVE_LAYOUT,
        &screen_ids.search,
        rect(548, bar.top, 634, bar.bottom),
        CLICKABLE | LONG_CLICKABLE | FOCUSABLE,
        1,
    )
    .with_desc("搜索")
    .with_children(vec![
        wechat_node(
            IMAGE_VIEW,
            &screen_ids.action_icon,
            rect(577, 97, 620, 140),
            NO_FLAGS,
            1,
        )
        .painted(Paint::Icon(Icon::Search)),
    ]);
    let more = wechat_node(
        BUTTON,
        &screen_ids.more,
        rect(634, bar.top, SCREEN_W, bar.bottom),
        CLICKABLE | FOCUSABLE,
        2,
    )
    .with_desc("更多功能")
    .with_children(vec![
        wechat_node(
            IMAGE_VIEW,
            &screen_ids.action_icon,
            rect(648, 97, 691, 140),
            NO_FLAGS,
            1,
        )
        .painted(Paint::Icon(Icon::Plus)),
    ]);
    let right_actions = rect(548, bar.top, SCREEN_W, bar.bottom);
    let right_group = nest(vec![
        wechat_node(LINEAR_LAYOUT, &bar_ids.actions, right_actions, NO_FLAGS, 3),
        wechat_node(
            LINEAR_LAYOUT,
            &bar_ids.actions_inner,
            right_actions,
            NO_FLAGS,
            1,
        )
        .with_children(vec![search, more]),
    ]);
    let content = wechat_node(
        RELATIVE_LAYOUT,
        &screen_ids.action_bar_content,
        bar,
        CLICKABLE | FOCUSABLE,
        1,
    )
    .with_children(vec![
        wechat_node(
            LINEAR_LAYOUT,
            &bar_ids.up,
            rect(0, bar.top, 75, bar.bottom),
            NO_FLAGS,
            2,
        ),
        title_group,
        right_group,
    ]);
    let bar_view = wechat_node(VIEW_GROUP, &bar_ids.view, bar, CLICKABLE | FOCUSABLE, 1)
        .on_tap(Action::Absorb)
        .with_children(vec![content]);
    wechat_node(FRAME_LAYOUT, &bar_ids.frame, bar, NO_FLAGS, 2)
        .at_index(1)
        .painted(Paint::Fill(Ink::ChatBackground))
        .with_children(vec![bar_view])
}

/// The list's first child: a copy of the title bar, `top` being where it starts (negative
/// once the list has scrolled). Its bar sits lower than the real action bar's.
fn scrolling_title_copy(ids: &Ids, title: &str, top: i32) -> Node {
    let copy_ids = &ids.layout.list_title_copy;
    let bar_ids = &ids.layout.action_bar;
    let bar = rect(0, top + 61, SCREEN_W, top + TITLE_COPY_H);
    let title_view = wechat_node(
        TEXT_VIEW,
        ANDROID_TEXT1,
        rect(216, top + 97, 504, top + 139),
        NO_FLAGS,
        1,
    )
    .with_text(title);
    let title_group = nest(vec![
        wechat_node(
            RELATIVE_LAYOUT,
            &bar_ids.title_group,
            rect(216, top + 75, 504, top + 162),
            NO_FLAGS,
            2,
        ),
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(216, top + 75, 504, top + 162),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(216, top + 97, 504, top + 139),
            NO_FLAGS,
            1,
        ),
        title_view,
    ]);
    let search = nest(vec![
        wechat_node(
            RELATIVE_LAYOUT,
            "",
            rect(576, top + 97, 648, top + 140),
            NO_FLAGS,
            1,
        ),
        wechat_node(
            IMAGE_VIEW,
            &copy_ids.search,
            rect(558, top + 79, 637, top + 158),
            CLICKABLE | FOCUSABLE,
            1,
        )
        .marked_naf(),
    ]);
    let plus = nest(vec![
        wechat_node(
            RELATIVE_LAYOUT,
            "",
            rect(648, top + 97, 720, top + 140),
            NO_FLAGS,
            2,
        ),
        wechat_node(
            IMAGE_VIEW,
            &copy_ids.plus,
            rect(630, top + 79, 709, top + 158),
            CLICKABLE | FOCUSABLE,
            1,
        )
        .marked_naf(),
    ]);
    let icons = wechat_node(
        LINEAR_LAYOUT,
        "",
        rect(576, top + 97, 720, top + 140),
        NO_FLAGS,
        3,
    )
    .with_children(vec![search, plus]);
    let up = wechat_node(
        LINEAR_LAYOUT,
        &bar_ids.up,
        rect(0, top + 75, 82, top + 162),
        CLICKABLE | FOCUSABLE,
        1,
    )
    .marked_naf();
    let bar_content = wechat_node(RELATIVE_LAYOUT, &copy_ids.bar_content, bar, NO_FLAGS, 2)
        .with_children(vec![up, title_group, icons]);
    let bar_frame = wechat_node(FRAME_LAYOUT, &copy_ids.bar_frame, bar, NO_FLAGS, 4)
        .at_index(2)
        .with_children(vec![
            wechat_node(FRAME_LAYOUT, "", bar, NO_FLAGS, 1).with_children(vec![
                wechat_node(VIEW, &copy_ids.bar_background, bar, NO_FLAGS, 1),
                bar_content,
            ]),
        ]);
    let whole = rect(0, top, SCREEN_W, top + TITLE_COPY_H);
    let inner = wechat_node(RELATIVE_LAYOUT, "", whole, NO_FLAGS, 1).with_children(vec![
        wechat_node(FRAME_LAYOUT, &copy_ids.frame, whole, NO_FLAGS, 3),
        bar_frame,
        wechat_node(
            VIEW,
            &copy_ids.handle,
            rect(315, top + 67, 405, top + 85),
            NO_FLAGS,
            2,
        )
        .at_index(3),
    ]);
    wechat_node(RELATIVE_LAYOUT, "", whole, LONG_CLICKABLE, 1)
        .at_index(0)
        .with_children(vec![inner])
}
