//! The frame every WeChat screen sits in, copied from the real dumps: nested layouts down to
//! the one that holds the screen, beside a narrow side strip at the left edge.

use super::node::{FRAME_LAYOUT, LINEAR_LAYOUT, NO_FLAGS, Node, nest, rect, wechat_node};
use super::{FULL_SCREEN, SCREEN_H};
use crate::wechat::ids::Ids;

const SIDE_STRIP_W: i32 = 65;

pub(super) fn app_frame(ids: &Ids, content: Node) -> Node {
    let frame = &ids.layout.frame;
    let side_strip = rect(0, 0, SIDE_STRIP_W, SCREEN_H);
    let side_panel = wechat_node(FRAME_LAYOUT, "", FULL_SCREEN, NO_FLAGS, 2).with_children(vec![
        wechat_node(FRAME_LAYOUT, &frame.side_strip, side_strip, NO_FLAGS, 1),
        nest(vec![
            wechat_node(FRAME_LAYOUT, "", side_strip, NO_FLAGS, 2),
            wechat_node(
                FRAME_LAYOUT,
                &frame.side_strip_inner,
                side_strip,
                NO_FLAGS,
                1,
            ),
            wechat_node(LINEAR_LAYOUT, "", side_strip, NO_FLAGS, 1),
        ]),
    ]);
    let main = nest(vec![
        wechat_node(FRAME_LAYOUT, "", FULL_SCREEN, NO_FLAGS, 1),
        wechat_node(FRAME_LAYOUT, &frame.content, FULL_SCREEN, NO_FLAGS, 1),
        content,
    ]);
    let split = wechat_node(FRAME_LAYOUT, "", FULL_SCREEN, NO_FLAGS, 3)
        .with_children(vec![side_panel, main]);
    nest(vec![
        wechat_node(FRAME_LAYOUT, "", FULL_SCREEN, NO_FLAGS, 0),
        wechat_node(LINEAR_LAYOUT, "", FULL_SCREEN, NO_FLAGS, 1),
        wechat_node(FRAME_LAYOUT, "", FULL_SCREEN, NO_FLAGS, 2),
        split,
    ])
}
