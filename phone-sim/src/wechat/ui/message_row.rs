//! One row of a chat's message list: a message (own at the right, others' at the left, a
//! group member's with the name above it) or a centred system line, each with a time divider
//! above it when the message before is more than five minutes older. A message is a text
//! bubble, a picture, a sticker or a red packet.

use super::node::{
    CLICKABLE, FOCUSABLE, FRAME_LAYOUT, IMAGE_VIEW, Ink, LINEAR_LAYOUT, LONG_CLICKABLE, NO_FLAGS,
    Node, Paint, RELATIVE_LAYOUT, Rect, TEXT_VIEW, TextStyle, VIEW, rect, wechat_node,
};
use super::text::{
    BODY, BODY_TEXT_PX, LINE_H, SMALL, SMALL_TEXT_PX, SYSTEM, SYSTEM_TEXT_PX, width_in_units, wrap,
};
use super::{BuildOpts, SCREEN_CENTRE_X, SCREEN_W, avatar_colour};
use crate::wechat::model::{Chat, Message, MsgKind};

/// Messages further apart than this get a time divider (WeChat uses five minutes).
const DIVIDER_GAP_SECS: i64 = 300;
const DIVIDER_H: i32 = 105;
/// Line length, in units, of a bubble and of a system line.
pub const MESSAGE_LINE_UNITS: i32 = 32;
const SYSTEM_LINE_UNITS: i32 = 46;
/// A one-line system row; each further line adds [`LINE_H`].
const SYSTEM_ROW_H: i32 = 68;
/// A system line's text is this much wider than its widest line, up to a maximum.
const SYSTEM_LINE_PAD: i32 = 20;
const SYSTEM_LINE_MAX_W: i32 = 612;
/// The real dump's system text overhangs its parent by this much above and below.
const SYSTEM_TEXT_OVERHANG: i32 = 5;
/// A bubble's padding around its text, both sides together.
pub const BUBBLE_PAD_H: i32 = 56;
pub const BUBBLE_PAD_V: i32 = 28;
const BUBBLE_MAX_W: i32 = 504;
/// The bubble's tail, drawn inside the bubble's bounds on the avatar's side: its width, and
/// how far below the bubble's top its middle is (level with a one-line text).
pub const BUBBLE_TAIL_W: i32 = 10;
pub const BUBBLE_TAIL_Y: i32 = 34;
/// Where the text of a bubble starts: centred in the bubble's body (the bubble less its tail).
pub fn bubble_text_left(bubble: &Rect, own: bool) -> i32 {
    let body_left = if own {
        bubble.left
    } else {
        bubble.left + BUBBLE_TAIL_W
    };
    body_left + (BUBBLE_PAD_H - BUBBLE_TAIL_W) / 2
}
/// A picture's thumbnail, a sticker, a red packet's card (tail included), in layout pixels.
const IMAGE_SIZE: (i32, i32) = (240, 320);
const STICKER_SIZE: (i32, i32) = (240, 240);
const RED_PACKET_SIZE: (i32, i32) = (460, 168);
/// The red packet's orange part; the footer with `微信红包` lies below it.
pub const RED_PACKET_BODY_H: i32 = 120;
const RED_PACKET_LABEL: &str = "微信红包";
/// Where the greeting starts, right of the red packet's icon.
pub const RED_PACKET_TEXT_LEFT: i32 = 118;
/// The avatar is square; a row is never lower than it.
const AVATAR_SIZE: i32 = 94;
/// Own avatars at the right, others' at the left; bubbles grow away from them.
const OWN_AVATAR: (i32, i32) = (615, 709);
const OTHERS_AVATAR: (i32, i32) = (11, 105);
/// A group member's name above the bubble pushes it down this much.
const SENDER_NAME_H: i32 = 44;
const ROW_GAP: i32 = 11;

fn needs_divider(messages: &[Message], i: usize) -> bool {
    i == 0 || messages[i].ts - messages[i - 1].ts > DIVIDER_GAP_SECS
}

fn bubble_height(lines: usize) -> i32 {
    BUBBLE_PAD_V + LINE_H * lines as i32
}

/// The size of what a message shows: its bubble, picture or card.
fn content_size(message: &Message) -> (i32, i32) {
    match message.kind {
        MsgKind::Image => IMAGE_SIZE,
        MsgKind::Sticker => STICKER_SIZE,
        MsgKind::RedPacket => RED_PACKET_SIZE,
        MsgKind::Text | MsgKind::System => {
            let lines = wrap(&message.text, MESSAGE_LINE_UNITS);
            let widest = lines.iter().map(|l| width_in_units(l)).max().unwrap_or(0);
            (
                (BUBBLE_PAD_H + widest * BODY_TEXT_PX).min(BUBBLE_MAX_W),
                bubble_height(lines.len()),
            )
        }
    }
}

/// Height of message `i`'s row, in content pixels.
pub(super) fn row_height(chat: &Chat, i: usize) -> i32 {
    let message = &chat.messages[i];
    let divider = if needs_divider(&chat.messages, i) {
        DIVIDER_H
    } else {
        0
    };
    match message.kind {
        MsgKind::System => {
            divider
                + SYSTEM_ROW_H
                + LINE_H * (wrap(&message.text, SYSTEM_LINE_UNITS).len() as i32 - 1)
        }
        MsgKind::Text | MsgKind::Image | MsgKind::Sticker | MsgKind::RedPacket => {
            let bubble = content_size(message).1;
            let name = if chat.group && !message.own {
                SENDER_NAME_H
            } else {
                0
            };
            divider + (name + bubble).max(AVATAR_SIZE) + ROW_GAP
        }
    }
}

fn divider_node(opts: &BuildOpts<'_>, ts: i64, top: i32, bottom: i32) -> Node {
    let text = opts.clock.divider(ts);
    let w = width_in_units(&text) * SMALL_TEXT_PX;
    wechat_node(
        TEXT_VIEW,
        &opts.ids.time_divider,
        rect(
            SCREEN_CENTRE_X - w / 2,
            top,
            SCREEN_CENTRE_X + w / 2,
            bottom,
        ),
        CLICKABLE | FOCUSABLE,
        3,
    )
    .with_text(text)
    .painted(Paint::Text(TextStyle::new(Ink::TextFaint, SMALL).centred()))
}

/// Message `i`'s row, its top at `top`.
pub(super) fn message_row(chat: &Chat, i: usize, top: i32, opts: &BuildOpts<'_>) -> Node {
    let ids = opts.ids;
    let message = &chat.messages[i];
    let divider = needs_divider(&chat.messages, i);
    let bottom = top + row_height(chat, i);
    let drawing_order = i as u32 + 1;
    let content_top = top + if divider { DIVIDER_H } else { 0 };
    if message.kind == MsgKind::System {
        return system_row(
            message,
            divider,
            top,
            content_top,
            bottom,
            drawing_order,
            opts,
        );
    }

    let (bubble_w, bubble_h) = content_size(message);
    let speaker = if message.own {
        String::new()
    } else {
        message.sender.clone().unwrap_or_default()
    };
    let avatar_desc = if message.own {
        format!("我{}", ids.avatar_suffix)
    } else {
        format!("{speaker}{}", ids.avatar_suffix)
    };
    let (avatar_left, avatar_right) = if message.own {
        OWN_AVATAR
    } else {
        OTHERS_AVATAR
    };
    let avatar = rect(
        avatar_left,
        content_top,
        avatar_right,
        content_top + AVATAR_SIZE,
    );
    let avatar_box = wechat_node(
        RELATIVE_LAYOUT,
        &ids.message_avatar_box,
        avatar,
        NO_FLAGS,
        1,
    )
    .with_children(vec![
        wechat_node(
            IMAGE_VIEW,
            &ids.message_avatar,
            avatar,
            CLICKABLE | LONG_CLICKABLE,
            1,
        )
        .with_desc(avatar_desc)
        .painted(Paint::Avatar(avatar_colour(if message.own {
            "我"
        } else {
            &speaker
        }))),
        wechat_node(VIEW, "", avatar, NO_FLAGS, 2),
        wechat_node(IMAGE_VIEW, "", avatar, NO_FLAGS, 3),
    ]);
    let bubble = |left: i32, bubble_top: i32| {
        content_node(
            message,
            rect(left, bubble_top, left + bubble_w, bubble_top + bubble_h),
            opts,
        )
    };
    // The bubble sits in two layouts of its own size; a group member's name joins the outer.
    let bubble_in_layouts = |left: i32, bubble_top: i32| {
        let around = rect(left, bubble_top, left + bubble_w, bubble_top + bubble_h);
        wechat_node(LINEAR_LAYOUT, "", around, NO_FLAGS, 2)
            .at_index(1)
            .with_children(vec![bubble(left, bubble_top)])
    };
    let body = if message.own {
        let left = OWN_AVATAR.0 - bubble_w;
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(left, content_top, OWN_AVATAR.0, content_top + bubble_h),
            NO_FLAGS,
            2,
        )
        .with_children(vec![bubble_in_layouts(left, content_top)])
    } else if chat.group {
        let left = OTHERS_AVATAR.1;
        let name_w = width_in_units(&speaker) * BODY_TEXT_PX;
        let bubble_top = content_top + SENDER_NAME_H;
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(
                left,
                content_top + 11,
                left + bubble_w,
                bubble_top + bubble_h,
            ),
            NO_FLAGS,
            2,
        )
        .with_children(vec![
            wechat_node(
                TEXT_VIEW,
                &ids.message_sender,
                rect(left, content_top + 11, left + name_w, content_top + 41),
                NO_FLAGS,
                1,
            )
            .with_text(speaker.clone())
            .painted(Paint::Text(TextStyle::new(Ink::TextGrey, BODY))),
            bubble_in_layouts(left, bubble_top),
        ])
    } else {
        let left = OTHERS_AVATAR.1;
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(left, content_top, left + bubble_w, content_top + bubble_h),
            NO_FLAGS,
            2,
        )
        .with_children(vec![bubble_in_layouts(left, content_top)])
    };
    // Both sides list their children left to right.
    let layout_children = if message.own {
        vec![body.at_index(0), avatar_box.at_index(1)]
    } else {
        vec![avatar_box, body.at_index(1)]
    };
    let mut children = Vec::new();
    if divider {
        children.push(divider_node(opts, message.ts, top, top + DIVIDER_H));
    }
    children.push(
        wechat_node(
            LINEAR_LAYOUT,
            &ids.message_layout,
            rect(0, content_top, SCREEN_W, bottom),
            NO_FLAGS,
            5,
        )
        .at_index(1)
        .with_children(layout_children),
    );
    wechat_node(
        RELATIVE_LAYOUT,
        &ids.message_row,
        rect(0, top, SCREEN_W, bottom),
        NO_FLAGS,
        drawing_order,
    )
    .with_children(children)
}

/// What a message shows at `r`. A text message is the message TextView (`bkl`) with its
/// text; a picture or a sticker is the media frame (`bkg`) around an ImageView without text,
/// as real phones show pictures to uiautomator; a red packet is a card with its greeting and
/// `微信红包`.
fn content_node(message: &Message, r: Rect, opts: &BuildOpts<'_>) -> Node {
    let ids = opts.ids;
    let own = message.own;
    let flags = CLICKABLE | LONG_CLICKABLE | FOCUSABLE;
    match message.kind {
        MsgKind::Text | MsgKind::System => wechat_node(TEXT_VIEW, &ids.message_text, r, flags, 1)
            .with_text(message.text.clone())
            .painted(Paint::Bubble { own }),
        MsgKind::Image | MsgKind::Sticker => {
            let paint = if message.kind == MsgKind::Image {
                Paint::Image
            } else {
                Paint::Sticker
            };
            wechat_node(FRAME_LAYOUT, &ids.message_media, r, flags, 1).with_children(vec![
                wechat_node(IMAGE_VIEW, "", r, NO_FLAGS, 1).painted(paint),
            ])
        }
        MsgKind::RedPacket => {
            let (body_left, body_right) = if own {
                (r.left, r.right - BUBBLE_TAIL_W)
            } else {
                (r.left + BUBBLE_TAIL_W, r.right)
            };
            let greeting = message.red_packet_greeting().to_string();
            let greeting_units =
                (body_right - body_left - RED_PACKET_TEXT_LEFT - 20) / BODY_TEXT_PX;
            let greeting = super::text::ellipsize(&greeting, greeting_units);
            let greeting_w = width_in_units(&greeting) * BODY_TEXT_PX;
            let label_w = width_in_units(RED_PACKET_LABEL) * SMALL_TEXT_PX;
            let text_left = body_left + RED_PACKET_TEXT_LEFT;
            let label_top = r.top + RED_PACKET_BODY_H + 9;
            wechat_node(LINEAR_LAYOUT, "", r, flags, 1)
                .painted(Paint::RedPacket { own })
                .with_children(vec![
                    wechat_node(
                        TEXT_VIEW,
                        "",
                        rect(text_left, r.top + 39, text_left + greeting_w, r.top + 80),
                        NO_FLAGS,
                        1,
                    )
                    .with_text(greeting)
                    .painted(Paint::Text(TextStyle::new(Ink::OnColour, BODY))),
                    wechat_node(
                        TEXT_VIEW,
                        "",
                        rect(
                            body_left + 24,
                            label_top,
                            body_left + 24 + label_w,
                            label_top + 30,
                        ),
                        NO_FLAGS,
                        2,
                    )
                    .with_text(RED_PACKET_LABEL)
                    .painted(Paint::Text(TextStyle::new(Ink::RedPacketLabel, SMALL))),
                ])
        }
    }
}

/// A centred grey line (`X邀请Y加入了群聊`, a recall). It has neither message row nor message
/// layout around it, exactly as in the real dump, so a reader never takes it for a message.
fn system_row(
    message: &Message,
    divider: bool,
    top: i32,
    line_top: i32,
    bottom: i32,
    drawing_order: u32,
    opts: &BuildOpts<'_>,
) -> Node {
    let lines = wrap(&message.text, SYSTEM_LINE_UNITS);
    let widest = lines.iter().map(|l| width_in_units(l)).max().unwrap_or(0);
    let w = (SYSTEM_LINE_PAD + widest * SYSTEM_TEXT_PX).min(SYSTEM_LINE_MAX_W);
    let mut children = Vec::new();
    if divider {
        // Above a system line the divider is drawn tighter than above a message.
        children.push(divider_node(opts, message.ts, top + 13, top + 92));
    }
    children.push(
        wechat_node(
            LINEAR_LAYOUT,
            "",
            rect(0, line_top, SCREEN_W, bottom),
            NO_FLAGS,
            5,
        )
        .at_index(1)
        .with_children(vec![
            wechat_node(
                TEXT_VIEW,
                &opts.ids.message_text,
                rect(
                    SCREEN_CENTRE_X - w / 2,
                    line_top - SYSTEM_TEXT_OVERHANG,
                    SCREEN_CENTRE_X + w / 2,
                    bottom + SYSTEM_TEXT_OVERHANG,
                ),
                CLICKABLE | FOCUSABLE,
                1,
            )
            .with_text(message.text.clone())
            .painted(Paint::Text(
                TextStyle::new(Ink::TextFaint, SYSTEM)
                    .centred()
                    .wrapped(SYSTEM_LINE_UNITS),
            )),
        ]),
    );
    wechat_node(
        LINEAR_LAYOUT,
        "",
        rect(0, top, SCREEN_W, bottom),
        FOCUSABLE,
        drawing_order,
    )
    .with_children(children)
}
