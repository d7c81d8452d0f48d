//! The bottom tabs of the main screen: 微信 (selected, with the unread total), 通讯录, 发现, 我.

use super::node::{
    CLICKABLE, FOCUSABLE, IMAGE_VIEW, Icon, Ink, LINEAR_LAYOUT, NO_FLAGS, Node, Paint,
    RELATIVE_LAYOUT, TEXT_VIEW, TextStyle, rect, wechat_node,
};
use super::text::{SMALL, SMALL_TEXT_PX, width_in_units};
use super::{REF_SCREEN_H, SCREEN_W, bottom_bar_top};

const BOTTOM_BAR_TOP: i32 = bottom_bar_top(REF_SCREEN_H);
const SCREEN_H: i32 = REF_SCREEN_H;
use crate::wechat::ids::Ids;
use crate::wechat::model::Action;

const LABELS: [&str; 4] = ["微信", "通讯录", "发现", "我"];
const TAB_W: i32 = SCREEN_W / LABELS.len() as i32;
// A tab's icon above its label, copied from the real dump.
const ICON_TOP: i32 = 1517;
const LABEL_TOP: i32 = 1567;
const LABEL_BOTTOM: i32 = 1597;
const BADGE_SIZE: i32 = 32;

pub(super) fn tab_bar(ids: &Ids, unread_total: u32, h: i32) -> Node {
    // Written against the real dump's screen; a screen of another height moves it.
    tab_bar_at_ref(ids, unread_total).translated(h - REF_SCREEN_H)
}

fn tab_bar_at_ref(ids: &Ids, unread_total: u32) -> Node {
    let layout = &ids.layout.tab_bar;
    let tabs = LABELS
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let left = TAB_W * i as i32;
            let centre = left + TAB_W / 2;
            let selected = i == 0;
            let mut icon_box = vec![
                wechat_node(
                    IMAGE_VIEW,
                    &layout.icon,
                    rect(left + 65, ICON_TOP, left + 115, LABEL_TOP),
                    NO_FLAGS,
                    1,
                )
                .painted(Paint::Icon(Icon::Tab {
                    index: i as u8,
                    selected,
                })),
            ];
            if selected && unread_total > 0 {
                icon_box.push(
                    wechat_node(
                        TEXT_VIEW,
                        &ids.tab_unread,
                        rect(left + 101, ICON_TOP, left + 133, ICON_TOP + BADGE_SIZE),
                        NO_FLAGS,
                        2,
                    )
                    .with_text(unread_total.to_string())
                    .painted(Paint::Badge),
                );
            }
            let label_w = width_in_units(label) * SMALL_TEXT_PX;
            let ink = if selected { Ink::Brand } else { Ink::Text };
            let label_view = wechat_node(
                TEXT_VIEW,
                &ids.tab_label,
                rect(
                    centre - label_w / 2,
                    LABEL_TOP,
                    centre + label_w / 2,
                    LABEL_BOTTOM,
                ),
                NO_FLAGS,
                2,
            )
            .with_text(*label)
            .painted(Paint::Text(TextStyle::new(ink, SMALL).centred()));
            let icon_and_label = wechat_node(
                LINEAR_LAYOUT,
                &layout.icon_and_label,
                rect(left, ICON_TOP, left + TAB_W, LABEL_BOTTOM),
                NO_FLAGS,
                1,
            )
            .with_children(vec![
                wechat_node(
                    RELATIVE_LAYOUT,
                    "",
                    rect(left, ICON_TOP, left + TAB_W, LABEL_TOP),
                    NO_FLAGS,
                    1,
                )
                .with_children(icon_box),
                label_view,
            ]);
            wechat_node(
                RELATIVE_LAYOUT,
                &layout.tab,
                rect(left, BOTTOM_BAR_TOP, left + TAB_W, SCREEN_H),
                CLICKABLE | FOCUSABLE,
                i as u32 + 1,
            )
            .on_tap(Action::Absorb)
            .with_children(vec![icon_and_label])
        })
        .collect();
    let bar = rect(0, BOTTOM_BAR_TOP, SCREEN_W, SCREEN_H);
    wechat_node(RELATIVE_LAYOUT, &layout.bar, bar, NO_FLAGS, 2)
        .at_index(1)
        .painted(Paint::Fill(Ink::Bar))
        .on_tap(Action::Absorb)
        .with_children(vec![
            wechat_node(LINEAR_LAYOUT, "", bar, NO_FLAGS, 1).with_children(tabs),
        ])
}
