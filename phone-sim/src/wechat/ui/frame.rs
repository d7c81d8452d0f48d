//! The frame every WeChat screen sits in, copied from the real dumps: nested layouts down to
//! the one that holds the screen, beside a narrow side strip at the left edge.

use super::full_screen;
use super::node::{FRAME_LAYOUT, LINEAR_LAYOUT, NO_FLAGS, Node, nest, rect, wechat_node};
use crate::wechat::ids::Ids;

const SIDE_STRIP_W: i32 = 65;

pub(super) fn app_frame(ids: &Ids, h: i32, content: Node) -> Node {
    let frame = &ids.layout.frame;
    let full_screen = full_screen(h);
    let side_strip = rect(0, 0, SIDE_STRIP_W, h);
    let side_panel = wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 2).with_children(vec![
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
        wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 1),
        wechat_node(FRAME_LAYOUT, &frame.content, full_screen, NO_FLAGS, 1),
        content,
    ]);
    let split = wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 3)
        .with_children(vec![side_panel, main]);
    nest(vec![
        wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 0),
        wechat_node(LINEAR_LAYOUT, "", full_screen, NO_FLAGS, 1),
        wechat_node(FRAME_LAYOUT, "", full_screen, NO_FLAGS, 2),
        split,
    ])
}
