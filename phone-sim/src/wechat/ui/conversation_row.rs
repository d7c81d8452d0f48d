//! One row of the conversation list: the avatar (with an unread badge, or a dot for a muted
//! chat), the title and the last message's time on the first line, the preview (with
//! `[N条]` for a muted chat's unread) and the mute icon on the second.

use super::node::{
    CLICKABLE, FOCUSABLE, IMAGE_VIEW, Icon, Ink, LINEAR_LAYOUT, LONG_CLICKABLE, NO_FLAGS, Node,
    Paint, RELATIVE_LAYOUT, TEXT_VIEW, TextStyle, VIEW, rect, wechat_node,
};
use super::text::{BODY, BODY_TEXT_PX, TIME, TIME_TEXT_PX, ellipsize, width_in_units};
use super::{BuildOpts, SCREEN_W, avatar_colour};
use crate::wechat::model::{Action, Chat, MsgKind};

pub(super) const ROW_H: i32 = 130;
/// Where title, time and preview begin and end.
const TEXT_LEFT: i32 = 137;
const TEXT_RIGHT: i32 = 691;
/// Between the title's end and the time.
const TITLE_TIME_GAP: i32 = 29;
const PREVIEW_MAX_UNITS: i32 = 46;
/// What the mute icon takes from the preview: its width in units, and where the preview then
/// ends instead of at its usual right edge.
const MUTE_ICON_UNITS: i32 = 4;
const PREVIEW_RIGHT: i32 = 677;
const PREVIEW_RIGHT_MUTED: i32 = 648;
/// An unread badge is centred here, at the avatar's top-right corner, and grows with its number.
const BADGE_CENTRE_X: i32 = 114;
const BADGE_MIN_W: i32 = 32;
/// Padding beside a badge's number.
const BADGE_PAD: i32 = 12;

/// The row whose top is at `y`; `index` and `drawing_order` are its attributes in the list.
pub(super) fn conversation_row(
    chat: &Chat,
    y: i32,
    opts: &BuildOpts<'_>,
    index: u32,
    drawing_order: u32,
) -> Node {
    let ids = opts.ids;
    let layout = &ids.layout.conversation_row;
    let last = chat.messages.last();
    let time = last.map(|m| opts.clock.row_time(m.ts)).unwrap_or_default();
    let time_left = TEXT_RIGHT - width_in_units(&time) * TIME_TEXT_PX;
    let title_right = time_left - TITLE_TIME_GAP;
    let title = ellipsize(&chat.name, (title_right - TEXT_LEFT) / BODY_TEXT_PX);
    let mut preview = match last {
        None => String::new(),
        Some(m) if m.kind == MsgKind::System || m.own || !chat.group => m.summary(),
        Some(m) => format!("{}: {}", m.sender.clone().unwrap_or_default(), m.summary()),
    };
    if chat.muted && chat.unread > 0 {
        preview = format!("[{}条] {preview}", chat.unread);
    }
    let preview_right = if chat.muted {
        PREVIEW_RIGHT_MUTED
    } else {
        PREVIEW_RIGHT
    };
    let preview = ellipsize(
        &preview,
        PREVIEW_MAX_UNITS - if chat.muted { MUTE_ICON_UNITS } else { 0 },
    );
    let (title_top, title_bottom) = (y + 25, y + 67);
    let (second_line_top, second_line_bottom) = (y + 67, y + 107);

    let mut avatar_box = vec![
        wechat_node(
            IMAGE_VIEW,
            &ids.row_avatar,
            rect(29, y + 21, 115, y + 107),
            NO_FLAGS,
            1,
        )
        .painted(Paint::Avatar(avatar_colour(&chat.name))),
    ];
    if chat.unread > 0 {
        if chat.muted {
            avatar_box.push(
                wechat_node(
                    IMAGE_VIEW,
                    &ids.row_unread_dot,
                    rect(105, y + 16, 123, y + 34),
                    NO_FLAGS,
                    3,
                )
                .at_index(1)
                .painted(Paint::Dot),
            );
        } else {
            let label = if chat.unread > 99 {
                "99+".to_string()
            } else {
                chat.unread.to_string()
            };
            let badge_w = BADGE_MIN_W.max(width_in_units(&label) * TIME_TEXT_PX + BADGE_PAD);
            avatar_box.push(
                wechat_node(
                    TEXT_VIEW,
                    &ids.row_unread_badge,
                    rect(
                        BADGE_CENTRE_X - badge_w / 2,
                        y + 8,
                        BADGE_CENTRE_X + badge_w / 2,
                        y + 40,
                    ),
                    NO_FLAGS,
                    3,
                )
                .at_index(1)
                .with_text(label)
                .painted(Paint::Badge),
            );
        }
    }
    let mut mute_slot = wechat_node(
        LINEAR_LAYOUT,
        "",
        rect(
            preview_right,
            second_line_top,
            TEXT_RIGHT,
            second_line_bottom,
        ),
        NO_FLAGS,
        2,
    );
    if chat.muted {
        mute_slot = mute_slot.with_children(vec![
            wechat_node(
                IMAGE_VIEW,
                &ids.row_muted,
                rect(662, y + 72, TEXT_RIGHT, y + 101),
                NO_FLAGS,
                1,
            )
            .painted(Paint::Icon(Icon::Mute)),
        ]);
    }

    let title_line = wechat_node(
        LINEAR_LAYOUT,
        &layout.title_line,
        rect(TEXT_LEFT, title_top, TEXT_RIGHT, title_bottom),
        NO_FLAGS,
        1,
    )
    .with_children(vec![
        wechat_node(
            LINEAR_LAYOUT,
            &layout.title_box,
            rect(TEXT_LEFT, title_top, title_right, title_bottom),
            NO_FLAGS,
            2,
        )
        .with_children(vec![
            wechat_node(
                VIEW,
                &ids.row_title,
                rect(TEXT_LEFT, title_top, title_right, title_bottom),
                NO_FLAGS,
                1,
            )
            .with_text(title)
            .painted(Paint::Text(TextStyle::new(Ink::Text, BODY))),
        ]),
        wechat_node(
            TEXT_VIEW,
            &ids.row_time,
            rect(time_left, title_top, TEXT_RIGHT, y + 55),
            NO_FLAGS,
            3,
        )
        .with_text(time)
        .painted(Paint::Text(TextStyle::new(Ink::TextGrey, TIME).right())),
    ]);
    let preview_box = rect(TEXT_LEFT, y + 71, preview_right, y + 103);
    let preview_line = wechat_node(
        LINEAR_LAYOUT,
        "",
        rect(TEXT_LEFT, second_line_top, TEXT_RIGHT, second_line_bottom),
        NO_FLAGS,
        2,
    )
    .with_children(vec![
        wechat_node(LINEAR_LAYOUT, "", preview_box, NO_FLAGS, 1).with_children(vec![
            wechat_node(VIEW, &ids.row_preview, preview_box, NO_FLAGS, 2)
                .with_text(preview)
                .painted(Paint::Text(TextStyle::new(Ink::TextGrey, BODY))),
        ]),
        mute_slot,
    ]);
    let text_side = rect(TEXT_LEFT, y, SCREEN_W, y + ROW_H);
    let text_column = wechat_node(RELATIVE_LAYOUT, "", text_side, NO_FLAGS, 2).with_children(vec![
        wechat_node(LINEAR_LAYOUT, "", text_side, NO_FLAGS, 1)
            .with_children(vec![title_line, preview_line]),
        wechat_node(
            VIEW,
            &layout.separator,
            rect(TEXT_LEFT, y + ROW_H - 1, SCREEN_W, y + ROW_H),
            NO_FLAGS,
            2,
        )
        .painted(Paint::Fill(Ink::Separator)),
    ]);
    let avatar_column = wechat_node(
        RELATIVE_LAYOUT,
        "",
        rect(29, y + 14, 130, y + 115),
        NO_FLAGS,
        1,
    )
    .with_children(avatar_box);

    let whole = rect(0, y, SCREEN_W, y + ROW_H);
    wechat_node(
        LINEAR_LAYOUT,
        &ids.conversation_row,
        whole,
        CLICKABLE | LONG_CLICKABLE | FOCUSABLE,
        drawing_order,
    )
    .at_index(index)
    .on_tap(Action::OpenChat(chat.name.clone()))
    .painted(Paint::Fill(if chat.pinned {
        Ink::PinnedRow
    } else {
        Ink::ListBackground
    }))
    .with_children(vec![
        wechat_node(LINEAR_LAYOUT, &ids.row_container, whole, FOCUSABLE, 1)
            .with_children(vec![avatar_column, text_column]),
    ])
}
