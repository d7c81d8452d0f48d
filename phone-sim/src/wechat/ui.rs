//! The view tree of the screen, built from the model. Dumps, taps and screenshots all read
//! this one tree, so what a reader sees, where a tap lands and what a screenshot shows agree.
//!
//! Geometry and nesting are copied from the real 8.0.x dumps in `fixtures/real-dumps/`
//! (720×1608, status bar 76 px, action bar to 162, tab/input bar from 1507).

use super::ids::Ids;
use super::model::{Action, Chat, Message, MsgKind, Screen, WeChat, ordered};
use crate::clock::Clock;

pub const SCREEN_W: i32 = 720;
pub const SCREEN_H: i32 = 1608;
pub const ACTION_BAR_BOTTOM: i32 = 162;
pub const BOTTOM_BAR_TOP: i32 = 1507;
pub const LIST_ROW_H: i32 = 130;
pub const LIST_HEADER_H: i32 = 162;
pub const CHAT_VIEWPORT: i32 = BOTTOM_BAR_TOP - ACTION_BAR_BOTTOM;
/// Messages further apart than this get a time divider (WeChat uses five minutes).
pub const DIVIDER_GAP_SECS: i64 = 300;

pub const WECHAT_PKG: &str = "com.tencent.mm";
pub const SYSTEMUI_PKG: &str = "com.android.systemui";
pub const UPSLIDE_PKG: &str = "com.vivo.upslide";
pub const LAUNCHER_PKG: &str = "com.bbk.launcher2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub l: i32,
    pub t: i32,
    pub r: i32,
    pub b: i32,
}

pub const fn rect(l: i32, t: i32, r: i32, b: i32) -> Rect {
    Rect { l, t, r, b }
}

impl Rect {
    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.l && x < self.r && y >= self.t && y < self.b
    }
    pub fn intersect(&self, o: &Rect) -> Option<Rect> {
        let r = rect(
            self.l.max(o.l),
            self.t.max(o.t),
            self.r.min(o.r),
            self.b.min(o.b),
        );
        (r.l < r.r && r.t < r.b).then_some(r)
    }
    pub fn w(&self) -> i32 {
        self.r - self.l
    }
    pub fn h(&self) -> i32 {
        self.b - self.t
    }
}

/// How the screenshot renderer paints a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    None,
    Fill(u32),
    Text(u32),
    Bubble(u32),
    Avatar,
    Badge,
    Dot,
}

pub const BG_CHAT: u32 = 0xEDEDED;
pub const BG_WHITE: u32 = 0xFFFFFF;
pub const BG_BAR: u32 = 0xF7F7F7;
pub const GREEN: u32 = 0x95EC69;
pub const TEXT_DARK: u32 = 0x191919;
pub const TEXT_GREY: u32 = 0x9E9E9E;

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub class: &'static str,
    pub id: String,
    pub text: String,
    pub desc: String,
    pub package: &'static str,
    pub bounds: Rect,
    pub checkable: bool,
    pub checked: bool,
    pub clickable: bool,
    pub enabled: bool,
    pub focusable: bool,
    pub focused: bool,
    pub scrollable: bool,
    pub long_clickable: bool,
    pub password: bool,
    pub selected: bool,
    pub naf: bool,
    pub index: Option<u32>,
    pub drawing_order: u32,
    pub action: Option<Action>,
    pub role: Role,
    pub children: Vec<Node>,
}

fn mm(short: &str) -> String {
    format!("{WECHAT_PKG}:id/{short}")
}

/// A WeChat node; `flags` uses the short codes cl, lo, sc, fo, ch (clickable, long-clickable,
/// scrollable, focusable, checkable) so the builders read like the real dumps.
fn n(class: &'static str, id: &str, b: Rect, flags: &str, drawing_order: u32) -> Node {
    let mut node = Node {
        class,
        id: if id.is_empty() || id.contains(':') {
            id.to_string()
        } else {
            mm(id)
        },
        package: WECHAT_PKG,
        bounds: b,
        enabled: true,
        drawing_order,
        ..Node::default()
    };
    let mut i = 0;
    while i + 2 <= flags.len() {
        match &flags[i..i + 2] {
            "cl" => node.clickable = true,
            "lo" => node.long_clickable = true,
            "sc" => node.scrollable = true,
            "fo" => node.focusable = true,
            "ch" => node.checkable = true,
            _ => {}
        }
        i += 2;
    }
    node
}

impl Node {
    fn kids(mut self, children: Vec<Node>) -> Self {
        self.children = children;
        self
    }
    fn text(mut self, t: impl Into<String>) -> Self {
        self.text = t.into();
        self
    }
    fn desc(mut self, d: impl Into<String>) -> Self {
        self.desc = d.into();
        self
    }
    fn naf(mut self) -> Self {
        self.naf = true;
        self
    }
    fn idx(mut self, i: u32) -> Self {
        self.index = Some(i);
        self
    }
    fn act(mut self, a: Action) -> Self {
        self.action = Some(a);
        self
    }
    fn role(mut self, r: Role) -> Self {
        self.role = r;
        self
    }
    fn pkg(mut self, p: &'static str) -> Self {
        self.package = p;
        for c in &mut self.children {
            *c = std::mem::take(c).pkg(p);
        }
        self
    }

    /// Pre-order walk.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }

    /// Drops what lies outside `clip` and shrinks the rest to it, as the accessibility
    /// framework reports only the visible part of a view.
    fn clipped(mut self, clip: &Rect) -> Option<Node> {
        self.bounds = self.bounds.intersect(clip)?;
        self.children = std::mem::take(&mut self.children)
            .into_iter()
            .filter_map(|c| c.clipped(clip))
            .collect();
        Some(self)
    }
}

/// Text width in "units": ASCII counts 1, anything else 2 (CJK is about twice as wide).
pub fn units(s: &str) -> i32 {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// Wraps text at `cap` units per line, keeping the text's own line breaks.
pub fn wrap(text: &str, cap: i32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut cur = String::new();
        let mut w = 0;
        for ch in para.chars() {
            let cw = if ch.is_ascii() { 1 } else { 2 };
            if w + cw > cap && !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
                w = 0;
            }
            cur.push(ch);
            w += cw;
        }
        lines.push(cur);
    }
    lines
}

/// Shortens to `cap` units with WeChat's trailing `…`.
pub fn ellipsize(text: &str, cap: i32) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if units(&flat) <= cap {
        return flat;
    }
    let mut out = String::new();
    let mut w = 0;
    for ch in flat.chars() {
        let cw = if ch.is_ascii() { 1 } else { 2 };
        if w + cw > cap - 2 {
            break;
        }
        out.push(ch);
        w += cw;
    }
    out.push('…');
    out
}

const MSG_LINE_UNITS: i32 = 32;
const SYS_LINE_UNITS: i32 = 46;

fn needs_divider(msgs: &[Message], i: usize) -> bool {
    i == 0 || msgs[i].ts - msgs[i - 1].ts > DIVIDER_GAP_SECS
}

/// Height of one message row, in content pixels.
fn row_height(chat: &Chat, i: usize) -> i32 {
    let m = &chat.messages[i];
    let div = if needs_divider(&chat.messages, i) {
        105
    } else {
        0
    };
    match m.kind {
        MsgKind::System => div + 68 + 41 * (wrap(&m.text, SYS_LINE_UNITS).len() as i32 - 1),
        MsgKind::Text => {
            let lines = wrap(&m.text, MSG_LINE_UNITS).len() as i32;
            let h = 28 + 41 * lines;
            let name = if chat.group && !m.own { 44 } else { 0 };
            div + (name + h).max(94) + 11
        }
    }
}

pub fn chat_content_height(chat: &Chat) -> i32 {
    (0..chat.messages.len()).map(|i| row_height(chat, i)).sum()
}

pub fn chat_max_scroll(chat: &Chat) -> i32 {
    (chat_content_height(chat) - CHAT_VIEWPORT).max(0)
}

pub fn list_max_scroll(w: &WeChat) -> i32 {
    (LIST_HEADER_H + LIST_ROW_H * w.chats.len() as i32 - BOTTOM_BAR_TOP).max(0)
}

/// Unread total shown in the title (`微信(N)`) and on the tab: muted chats do not count.
pub fn unread_total(w: &WeChat) -> u32 {
    w.chats.iter().filter(|c| !c.muted).map(|c| c.unread).sum()
}

pub struct BuildOpts<'a> {
    pub ids: &'a Ids,
    pub clock: &'a Clock,
    pub title_text: bool,
}

/// Every window on screen, bottom first: status bar, the app (or launcher), pop-up, gesture bar.
pub fn build_windows(w: &WeChat, o: &BuildOpts<'_>) -> Vec<Node> {
    let mut out = vec![status_bar(o.clock)];
    if w.foreground {
        out.push(match &w.screen {
            Screen::List => list_window(w, o),
            Screen::Chat(name) => match w.chat(name) {
                Some(c) => chat_window(w, c, o),
                None => list_window(w, o),
            },
        });
        if let Some(p) = &w.popup {
            out.push(popup_window(p));
        }
    } else {
        out.push(launcher_window());
    }
    out.push(gesture_bar());
    out
}

/// The action the topmost view under (x, y) takes: the last match in pre-order wins,
/// because later siblings and later windows are drawn over earlier ones.
pub fn hit_test(windows: &[Node], x: i32, y: i32) -> Option<Action> {
    let mut found = None;
    for win in windows {
        win.walk(&mut |node| {
            if node.bounds.contains(x, y)
                && let Some(a) = &node.action
            {
                found = Some(a.clone());
            }
        });
    }
    found
}

const FL: &str = "android.widget.FrameLayout";
const LL: &str = "android.widget.LinearLayout";
const RL: &str = "android.widget.RelativeLayout";
const TV: &str = "android.widget.TextView";
const IV: &str = "android.widget.ImageView";
const IB: &str = "android.widget.ImageButton";
const VG: &str = "android.view.ViewGroup";
const VIEW: &str = "android.view.View";

/// Nests `outer → … → inner`, each node the only child of the one before.
fn chain(nodes: Vec<Node>) -> Node {
    let mut it = nodes.into_iter().rev();
    let mut acc = it.next().unwrap_or_default();
    for mut outer in it {
        outer.children = vec![acc];
        acc = outer;
    }
    acc
}

fn status_bar(clock: &Clock) -> Node {
    let hhmm = clock.hhmm(clock.now());
    let s = |class: &'static str, id: &str, b: Rect, d: u32| {
        let mut x = n(class, "", b, "", d);
        x.id = if id.is_empty() {
            String::new()
        } else {
            format!("{SYSTEMUI_PKG}:id/{id}")
        };
        x
    };
    let clock_view = s(TV, "clock", rect(40, 27, 117, 57), 2)
        .text(hhmm.clone())
        .desc(hhmm)
        .role(Role::Text(TEXT_DARK));
    let start_side = s(
        FL,
        "status_bar_start_side_container",
        rect(40, 8, 332, 76),
        1,
    )
    .kids(vec![clock_view]);
    let battery = s("", "", rect(638, 30, 680, 54), 1).desc("电池电量为百分之 80。");
    let end_side = s(RL, "", rect(388, 8, 680, 76), 2).kids(vec![battery]);
    let contents =
        s(LL, "status_bar_contents", rect(40, 0, 680, 76), 2).kids(vec![start_side, end_side]);
    let container = chain(vec![
        s(FL, "status_bar_container", rect(0, 0, 720, 76), 2),
        s(FL, "status_bar", rect(0, 0, 720, 76), 1),
        contents,
    ]);
    let anim = s(
        FL,
        "status_bar_launch_animation_container",
        rect(0, 0, 720, 76),
        1,
    );
    s(FL, "", rect(0, 0, 720, 76), 0)
        .kids(vec![anim, container])
        .pkg(SYSTEMUI_PKG)
        .role(Role::Fill(BG_BAR))
}

fn gesture_bar() -> Node {
    let bar = rect(0, 1572, 720, 1608);
    let mut ind = n(IV, "", rect(214, 1598, 506, 1608), "", 2).role(Role::Fill(0x333333));
    ind.id = format!("{UPSLIDE_PKG}:id/indicator_center");
    chain(vec![
        n(FL, "", bar, "", 0),
        n(FL, "", bar, "", 1),
        n(LL, "", bar, "", 1),
        ind,
    ])
    .pkg(UPSLIDE_PKG)
}

fn launcher_window() -> Node {
    let wechat = n(TV, "", rect(40, 1200, 160, 1330), "clfo", 1)
        .text("微信")
        .desc("微信")
        .act(Action::Launch)
        .role(Role::Fill(0x07C160));
    let settings = n(TV, "", rect(200, 1200, 320, 1330), "clfo", 2)
        .text("设置")
        .desc("设置")
        .act(Action::Absorb)
        .role(Role::Avatar);
    n(FL, "", rect(0, 0, 720, 1608), "", 0)
        .role(Role::Fill(0x2B4A6F))
        .kids(vec![wechat, settings])
        .pkg(LAUNCHER_PKG)
}

fn popup_window(p: &super::model::Popup) -> Node {
    let (l, r) = (60, 660);
    let text_lines = wrap(&p.text, 36).len() as i32;
    let top = 640;
    let body_b = top + 90 + 40 * text_lines + 30;
    let bottom = body_b + 100;
    let nb = p.buttons.len().max(1) as i32;
    let bw = (r - l) / nb;
    let last = p.buttons.len();
    let buttons = p
        .buttons
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let bl = l + bw * i as i32;
            let color = if i + 1 == last { 0x576B95 } else { TEXT_DARK };
            n(
                "android.widget.Button",
                "",
                rect(bl, body_b, bl + bw, bottom),
                "clfo",
                i as u32 + 1,
            )
            .text(label.clone())
            .act(Action::PopupButton(i))
            .role(Role::Text(color))
        })
        .collect();
    let title = n(TV, "", rect(l + 48, top + 40, r - 48, top + 82), "", 1)
        .text(p.title.clone())
        .role(Role::Text(TEXT_DARK));
    let body = n(
        TV,
        "",
        rect(l + 48, top + 90, r - 48, top + 90 + 40 * text_lines),
        "",
        2,
    )
    .text(p.text.clone())
    .role(Role::Text(TEXT_GREY));
    let button_row = n(LL, "", rect(l, body_b, r, bottom), "", 3).kids(buttons);
    let panel = n(LL, "", rect(l, top, r, bottom), "", 1).kids(vec![title, body, button_row]);
    let root = n(FL, "", rect(l, top, r, bottom), "", 0).role(Role::Fill(BG_WHITE));
    chain(vec![
        root,
        n(FL, "android:id/content", rect(l, top, r, bottom), "", 1),
        panel,
    ])
}

/// The frame every WeChat screen sits in: root → … → `tjb` (copied from the real dumps).
fn app_frame(content: Node) -> Node {
    let full = rect(0, 0, 720, 1608);
    let side = rect(0, 0, 65, 1608);
    let side_panel = n(FL, "", full, "", 2).kids(vec![
        n(FL, "jxo", side, "", 1),
        chain(vec![
            n(FL, "", side, "", 2),
            n(FL, "jv6", side, "", 1),
            n(LL, "", side, "", 1),
        ]),
    ]);
    let main = chain(vec![
        n(FL, "", full, "", 1),
        n(FL, "tjb", full, "", 1),
        content,
    ]);
    let split = n(FL, "", full, "", 3).kids(vec![side_panel, main]);
    chain(vec![
        n(FL, "", full, "", 0),
        n(LL, "", full, "", 1),
        n(FL, "", full, "", 2),
        split,
    ])
}

fn title_text(w: &WeChat) -> String {
    match unread_total(w) {
        0 => "微信".to_string(),
        n => format!("微信({n})"),
    }
}

fn list_header(title: &str, hy: i32) -> Node {
    let bar = rect(0, hy + 61, 720, hy + 162);
    let title_view = n(
        TV,
        "android:id/text1",
        rect(216, hy + 97, 504, hy + 139),
        "",
        1,
    )
    .text(title);
    let gp = chain(vec![
        n(RL, "gp", rect(216, hy + 75, 504, hy + 162), "", 2),
        n(LL, "", rect(216, hy + 75, 504, hy + 162), "", 1),
        n(LL, "", rect(216, hy + 97, 504, hy + 139), "", 1),
        title_view,
    ]);
    let search = chain(vec![
        n(RL, "", rect(576, hy + 97, 648, hy + 140), "", 1),
        n(IV, "meb", rect(558, hy + 79, 637, hy + 158), "clfo", 1).naf(),
    ]);
    let plus = chain(vec![
        n(RL, "", rect(648, hy + 97, 720, hy + 140), "", 2),
        n(
            IV,
            "plus_icon",
            rect(630, hy + 79, 709, hy + 158),
            "clfo",
            1,
        )
        .naf(),
    ]);
    let icons = n(LL, "", rect(576, hy + 97, 720, hy + 140), "", 3).kids(vec![search, plus]);
    let up = n(
        LL,
        "actionbar_up_indicator",
        rect(0, hy + 75, 82, hy + 162),
        "clfo",
        1,
    )
    .naf();
    let cg7 = n(RL, "cg7", bar, "", 2).kids(vec![up, gp, icons]);
    let wk = n(FL, "wk", bar, "", 4).idx(2).kids(vec![
        n(FL, "", bar, "", 1).kids(vec![n(VIEW, "wi", bar, "", 1), cg7]),
    ]);
    let whole = rect(0, hy, 720, hy + 162);
    let inner = n(RL, "", whole, "", 1).kids(vec![
        n(FL, "cvn", whole, "", 3),
        wk,
        n(VIEW, "gw5", rect(315, hy + 67, 405, hy + 85), "", 2).idx(3),
    ]);
    n(RL, "", whole, "lo", 1).idx(0).kids(vec![inner])
}

fn tab_bar(ids: &super::ids::Ids, total: u32) -> Node {
    let tabs = ["微信", "通讯录", "发现", "我"]
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let l = 180 * i as i32;
            let mut icon_box =
                vec![n(IV, "h6y", rect(l + 65, 1517, l + 115, 1567), "", 1).role(Role::Avatar)];
            if i == 0 && total > 0 {
                icon_box.push(
                    n(
                        TV,
                        &ids.tab_unread,
                        rect(l + 101, 1517, l + 133, 1549),
                        "",
                        2,
                    )
                    .text(total.to_string())
                    .role(Role::Badge),
                );
            }
            let lw = units(label) * 11;
            let color = if i == 0 { 0x07C160 } else { TEXT_DARK };
            let label_view = n(
                TV,
                &ids.tab_label,
                rect(l + 90 - lw / 2, 1567, l + 90 + lw / 2, 1597),
                "",
                2,
            )
            .text(*label)
            .role(Role::Text(color));
            let h5y = n(LL, "h5y", rect(l, 1517, l + 180, 1597), "", 1).kids(vec![
                n(RL, "", rect(l, 1517, l + 180, 1567), "", 1).kids(icon_box),
                label_view,
            ]);
            n(
                RL,
                "nvt",
                rect(l, 1507, l + 180, 1608),
                "clfo",
                i as u32 + 1,
            )
            .act(Action::Absorb)
            .kids(vec![h5y])
        })
        .collect();
    let bar = rect(0, 1507, 720, 1608);
    n(RL, "huj", bar, "", 2)
        .idx(1)
        .role(Role::Fill(BG_BAR))
        .act(Action::Absorb)
        .kids(vec![n(LL, "", bar, "", 1).kids(tabs)])
}

fn list_action_bar(title: String) -> Node {
    let bar = rect(0, 76, 720, 162);
    let tw = units(&title) * 14;
    let (tl, tr) = (360 - tw / 2, 360 + tw / 2);
    let gp = chain(vec![
        n(RL, "gp", rect(139, 76, 581, 162), "", 1),
        n(LL, "", rect(tl, 76, tr, 162), "", 1),
        n(LL, "", rect(tl, 98, tr, 140), "", 1),
        n(TV, "android:id/text1", rect(tl, 98, tr, 140), "", 1)
            .text(title)
            .role(Role::Text(TEXT_DARK)),
    ]);
    let search = n(RL, "jha", rect(548, 76, 634, 162), "cllofo", 1)
        .desc("搜索")
        .kids(vec![n(IV, "h5n", rect(577, 97, 620, 140), "", 1)]);
    let more = n(
        "android.widget.Button",
        "jga",
        rect(634, 76, 720, 162),
        "clfo",
        2,
    )
    .desc("更多功能")
    .kids(vec![n(IV, "h5n", rect(648, 97, 691, 140), "", 1)]);
    let coz = chain(vec![
        n(LL, "coz", rect(548, 76, 720, 162), "", 3),
        n(LL, "coy", rect(548, 76, 720, 162), "", 1).kids(vec![search, more]),
    ]);
    let hb = n(RL, "hb", bar, "clfo", 1).kids(vec![
        n(LL, "actionbar_up_indicator", rect(0, 76, 75, 162), "", 2),
        gp,
        coz,
    ]);
    let ef = n(VG, "ef", bar, "clfo", 1)
        .act(Action::Absorb)
        .kids(vec![hb]);
    n(FL, "ei", bar, "", 2)
        .idx(1)
        .role(Role::Fill(BG_CHAT))
        .kids(vec![ef])
}

fn list_window(w: &WeChat, o: &BuildOpts<'_>) -> Node {
    let ids = o.ids;
    let scroll = w.list_scroll.min(list_max_scroll(w));
    let screen = rect(0, 0, 720, 1608);
    let title = title_text(w);

    // The list's first child: a copy of the title bar that scrolls with the list.
    let mut list_children = Vec::new();
    if let Some(h) = list_header(&title, -scroll).clipped(&screen) {
        list_children.push(h);
    }
    for (i, chat) in ordered(&w.chats).into_iter().enumerate() {
        let y = LIST_HEADER_H + LIST_ROW_H * i as i32 - scroll;
        if y + LIST_ROW_H <= 0 || y >= SCREEN_H {
            continue;
        }
        let shown = list_children.len() as u32;
        if let Some(row) = list_row(chat, y, o, 12 + shown, 15 + shown).clipped(&screen) {
            list_children.push(row);
        }
    }
    let list = n(
        "android.widget.ListView",
        &ids.conversation_list,
        screen,
        "loscfo",
        3,
    )
    .role(Role::Fill(BG_WHITE))
    .act(Action::Absorb)
    .kids(list_children);

    let list_frame = n(FL, "", screen, "", 1).kids(vec![
        chain(vec![
            n(FL, "", screen, "", 2),
            n(RL, "j99", screen, "", 1),
            list,
        ]),
        n(FL, "", screen, "fo", 1).idx(1),
    ]);
    let kod = chain(vec![
        n(VG, "kod", screen, "fo", 1),
        n(FL, "jlt", screen, "", 1),
        list_frame,
    ]);
    let pages = chain(vec![
        n(FL, "android:id/content", screen, "", 1),
        n(FL, "g6w", screen, "", 1),
        n(FL, "", screen, "", 1).kids(vec![kod, tab_bar(ids, unread_total(w))]),
    ]);
    let crd = n(VG, "crd", screen, "", 1).kids(vec![pages, list_action_bar(title)]);
    app_frame(n(FL, "huh", screen, "", 1).kids(vec![crd]))
}

fn list_row(chat: &Chat, y: i32, o: &BuildOpts<'_>, index: u32, drawing_order: u32) -> Node {
    let ids = o.ids;
    let last = chat.messages.last();
    let time = last.map(|m| o.clock.row_time(m.ts)).unwrap_or_default();
    let time_w = units(&time) * 12;
    let time_l = 691 - time_w;
    let title_r = time_l - 29;
    let title = ellipsize(&chat.name, (title_r - 137) / 14);
    let mut preview = match last {
        None => String::new(),
        Some(m) if m.kind == MsgKind::System || m.own || !chat.group => m.text.clone(),
        Some(m) => format!("{}: {}", m.sender.clone().unwrap_or_default(), m.text),
    };
    if chat.muted && chat.unread > 0 {
        preview = format!("[{}条] {preview}", chat.unread);
    }
    let preview_r = if chat.muted { 648 } else { 677 };
    let preview = ellipsize(&preview, 46 - if chat.muted { 4 } else { 0 });

    let mut avatar_box = vec![
        n(
            "android.widget.ImageView",
            "a_4",
            rect(29, y + 21, 115, y + 107),
            "",
            1,
        )
        .role(Role::Avatar),
    ];
    if chat.unread > 0 {
        if chat.muted {
            avatar_box.push(
                n(
                    "android.widget.ImageView",
                    &ids.row_unread_dot,
                    rect(105, y + 16, 123, y + 34),
                    "",
                    3,
                )
                .idx(1)
                .role(Role::Dot),
            );
        } else {
            let label = if chat.unread > 99 {
                "99+".to_string()
            } else {
                chat.unread.to_string()
            };
            let bw = 32.max(units(&label) * 12 + 12);
            avatar_box.push(
                n(
                    "android.widget.TextView",
                    &ids.row_unread_badge,
                    rect(114 - bw / 2, y + 8, 114 + bw / 2, y + 40),
                    "",
                    3,
                )
                .idx(1)
                .text(label)
                .role(Role::Badge),
            );
        }
    }
    let mut mute_slot = n(
        "android.widget.LinearLayout",
        "",
        rect(preview_r, y + 67, 691, y + 107),
        "",
        2,
    );
    if chat.muted {
        mute_slot = mute_slot.kids(vec![
            n(
                "android.widget.ImageView",
                &ids.row_muted,
                rect(662, y + 72, 691, y + 101),
                "",
                1,
            )
            .role(Role::Avatar),
        ]);
    }

    n(
        "android.widget.LinearLayout",
        &ids.conversation_row,
        rect(0, y, 720, y + LIST_ROW_H),
        "cllofo",
        drawing_order,
    )
    .idx(index)
    .act(Action::OpenChat(chat.name.clone()))
    .role(Role::Fill(if chat.pinned { BG_BAR } else { BG_WHITE }))
    .kids(vec![
        n(
            "android.widget.LinearLayout",
            "cj0",
            rect(0, y, 720, y + LIST_ROW_H),
            "fo",
            1,
        )
        .kids(vec![
            n(
                "android.widget.RelativeLayout",
                "",
                rect(29, y + 14, 130, y + 115),
                "",
                1,
            )
            .kids(avatar_box),
            n(
                "android.widget.RelativeLayout",
                "",
                rect(137, y, 720, y + LIST_ROW_H),
                "",
                2,
            )
            .kids(vec![
                n(
                    "android.widget.LinearLayout",
                    "",
                    rect(137, y, 720, y + LIST_ROW_H),
                    "",
                    1,
                )
                .kids(vec![
                    n(
                        "android.widget.LinearLayout",
                        "o4k",
                        rect(137, y + 25, 691, y + 67),
                        "",
                        1,
                    )
                    .kids(vec![
                        n(
                            "android.widget.LinearLayout",
                            "ual",
                            rect(137, y + 25, title_r, y + 67),
                            "",
                            2,
                        )
                        .kids(vec![
                            n(
                                "android.view.View",
                                &ids.row_title,
                                rect(137, y + 25, title_r, y + 67),
                                "",
                                1,
                            )
                            .text(title)
                            .role(Role::Text(TEXT_DARK)),
                        ]),
                        n(
                            "android.widget.TextView",
                            &ids.row_time,
                            rect(time_l, y + 25, 691, y + 55),
                            "",
                            3,
                        )
                        .text(time)
                        .role(Role::Text(TEXT_GREY)),
                    ]),
                    n(
                        "android.widget.LinearLayout",
                        "",
                        rect(137, y + 67, 691, y + 107),
                        "",
                        2,
                    )
                    .kids(vec![
                        n(
                            "android.widget.LinearLayout",
                            "",
                            rect(137, y + 71, preview_r, y + 103),
                            "",
                            1,
                        )
                        .kids(vec![
                            n(
                                "android.view.View",
                                &ids.row_preview,
                                rect(137, y + 71, preview_r, y + 103),
                                "",
                                2,
                            )
                            .text(preview)
                            .role(Role::Text(TEXT_GREY)),
                        ]),
                        mute_slot,
                    ]),
                ]),
                n(
                    "android.view.View",
                    "d0v",
                    rect(137, y + 129, 720, y + 130),
                    "",
                    2,
                )
                .role(Role::Fill(0xE5E5E5)),
            ]),
        ]),
    ])
}

fn divider_node(o: &BuildOpts<'_>, ts: i64, t: i32, b: i32) -> Node {
    let text = o.clock.divider(ts);
    let w = units(&text) * 11;
    n(
        "android.widget.TextView",
        &o.ids.time_divider,
        rect(360 - w / 2, t, 360 + w / 2, b),
        "clfo",
        3,
    )
    .text(text)
    .role(Role::Text(TEXT_GREY))
}

fn message_row(chat: &Chat, i: usize, top: i32, o: &BuildOpts<'_>) -> Node {
    let ids = o.ids;
    let m = &chat.messages[i];
    let divider = needs_divider(&chat.messages, i);
    let h = row_height(chat, i);
    let order = i as u32 + 1;
    if m.kind == MsgKind::System {
        let lines = wrap(&m.text, SYS_LINE_UNITS);
        let widest = lines.iter().map(|l| units(l)).max().unwrap_or(0);
        let w = (20 + widest * 13).min(612);
        let it = top + if divider { 105 } else { 0 };
        let ib = top + h;
        let mut kids = Vec::new();
        if divider {
            kids.push(divider_node(o, m.ts, top + 13, top + 92));
        }
        // System lines have neither message_row nor message_layout around them, and their text
        // overhangs its parent by 5 px, exactly as in the real dump.
        kids.push(
            n(
                "android.widget.LinearLayout",
                "",
                rect(0, it, 720, ib),
                "",
                5,
            )
            .idx(1)
            .kids(vec![
                n(
                    "android.widget.TextView",
                    &ids.message_text,
                    rect(360 - w / 2, it - 5, 360 + w / 2, ib + 5),
                    "clfo",
                    1,
                )
                .text(m.text.clone())
                .role(Role::Text(TEXT_GREY)),
            ]),
        );
        return n(
            "android.widget.LinearLayout",
            "",
            rect(0, top, 720, top + h),
            "fo",
            order,
        )
        .kids(kids);
    }

    let lines = wrap(&m.text, MSG_LINE_UNITS);
    let widest = lines.iter().map(|l| units(l)).max().unwrap_or(0);
    let tw = (56 + widest * 14).min(504);
    let th = 28 + 41 * lines.len() as i32;
    let t = top + if divider { 105 } else { 0 };
    let b = top + h;
    let speaker = if m.own {
        String::new()
    } else {
        m.sender.clone().unwrap_or_default()
    };
    let avatar_desc = if m.own {
        format!("我{}", ids.avatar_suffix)
    } else {
        format!("{speaker}{}", ids.avatar_suffix)
    };
    let (al, ar) = if m.own { (615, 709) } else { (11, 105) };
    let avatar_box = n(
        "android.widget.RelativeLayout",
        &ids.message_avatar_box,
        rect(al, t, ar, t + 94),
        "",
        1,
    )
    .kids(vec![
        n(
            "android.widget.ImageView",
            &ids.message_avatar,
            rect(al, t, ar, t + 94),
            "cllo",
            1,
        )
        .desc(avatar_desc)
        .role(Role::Avatar),
        n("android.view.View", "", rect(al, t, ar, t + 94), "", 2),
        n(
            "android.widget.ImageView",
            "",
            rect(al, t, ar, t + 94),
            "",
            3,
        ),
    ]);
    let bubble_color = if m.own { GREEN } else { BG_WHITE };
    let text_node = |l: i32, tt: i32| {
        n(
            "android.widget.TextView",
            &ids.message_text,
            rect(l, tt, l + tw, tt + th),
            "cllofo",
            1,
        )
        .text(m.text.clone())
        .role(Role::Bubble(bubble_color))
    };
    let body = if m.own {
        let l = 615 - tw;
        n(
            "android.widget.LinearLayout",
            "",
            rect(l, t, 615, t + th),
            "",
            2,
        )
        .kids(vec![
            n(
                "android.widget.LinearLayout",
                "",
                rect(l, t, 615, t + th),
                "",
                2,
            )
            .idx(1)
            .kids(vec![text_node(l, t)]),
        ])
    } else if chat.group {
        let nw = units(&speaker) * 14;
        n(
            "android.widget.LinearLayout",
            "",
            rect(105, t + 11, 105 + tw, t + 44 + th),
            "",
            2,
        )
        .kids(vec![
            n(
                "android.widget.TextView",
                &ids.message_sender,
                rect(105, t + 11, 105 + nw, t + 41),
                "",
                1,
            )
            .text(speaker.clone())
            .role(Role::Text(TEXT_GREY)),
            n(
                "android.widget.LinearLayout",
                "",
                rect(105, t + 44, 105 + tw, t + 44 + th),
                "",
                2,
            )
            .idx(1)
            .kids(vec![text_node(105, t + 44)]),
        ])
    } else {
        n(
            "android.widget.LinearLayout",
            "",
            rect(105, t, 105 + tw, t + th),
            "",
            2,
        )
        .kids(vec![
            n(
                "android.widget.LinearLayout",
                "",
                rect(105, t, 105 + tw, t + th),
                "",
                2,
            )
            .idx(1)
            .kids(vec![text_node(105, t)]),
        ])
    };
    let layout_kids = if m.own {
        vec![body.idx(0), avatar_box.idx(1)]
    } else {
        vec![avatar_box, body.idx(1)]
    };
    let mut kids = Vec::new();
    if divider {
        kids.push(divider_node(o, m.ts, top, top + 105));
    }
    kids.push(
        n(
            "android.widget.LinearLayout",
            &ids.message_layout,
            rect(0, t, 720, b),
            "",
            5,
        )
        .idx(1)
        .kids(layout_kids),
    );
    n(
        "android.widget.RelativeLayout",
        &ids.message_row,
        rect(0, top, 720, b),
        "",
        order,
    )
    .kids(kids)
}

fn chat_action_bar(chat: &Chat, others_unread: u32, o: &BuildOpts<'_>) -> Node {
    let ids = o.ids;
    let bar = rect(0, 76, 720, 162);
    let mut back = vec![n(IV, "a4p", rect(0, 76, 57, 162), "", 1).desc("返回")];
    if others_unread > 0 {
        back.push(
            n(TV, &ids.chat_back_unread, rect(57, 101, 93, 137), "", 2)
                .text(others_unread.to_string())
                .role(Role::Badge),
        );
    }
    let up = n(
        LL,
        "actionbar_up_indicator",
        rect(0, 76, 122, 162),
        "clfo",
        1,
    )
    .act(Action::Back)
    .kids(back);
    let mut title_bar = n(LL, &ids.chat_title_bar, rect(192, 100, 528, 137), "fo", 1);
    if o.title_text {
        let tw = units(&chat.name).min(24) * 14;
        title_bar = title_bar.kids(vec![
            n(
                TV,
                &ids.chat_title,
                rect(360 - tw / 2, 100, 360 + tw / 2, 137),
                "",
                1,
            )
            .text(chat.name.clone())
            .role(Role::Text(TEXT_DARK)),
        ]);
    }
    let right = rect(619, 76, 720, 162);
    let info = chain(vec![
        n(LL, "coz", right, "", 3),
        n(LL, "coy", right, "", 1),
        n(LL, "", right, "", 1),
        n(RL, "", right, "", 7),
        n(IV, "fq", right, "clfo", 1)
            .desc("更多信息")
            .act(Action::Absorb),
    ]);
    let cob = n(RL, "cob", bar, "", 2).kids(vec![
        n(LL, "", rect(0, 76, 122, 162), "", 1).kids(vec![up]),
        n(LL, "gp", rect(91, 76, 629, 162), "", 2).kids(vec![title_bar]),
        info,
    ]);
    chain(vec![
        n(FL, "ei", bar, "", 4),
        n(VG, "ef", bar, "", 1).act(Action::Absorb),
        cob,
    ])
}

fn input_bar(chat: &Chat, focused: bool, ids: &super::ids::Ids) -> Node {
    let has_text = !chat.draft.is_empty();
    // With text the send button is wider than the "+" button it replaces.
    let (tgm_r, more_l) = if has_text { (536, 594) } else { (576, 634) };
    let box_r = tgm_r - 14;
    let mut edit = n(
        "android.widget.EditText",
        &ids.input,
        rect(86, 1518, box_r, 1598),
        "cllofo",
        1,
    )
    .naf()
    .text(chat.draft.clone())
    .act(Action::FocusInput)
    .role(Role::Bubble(BG_WHITE));
    edit.focused = focused;
    let field = rect(86, 1522, box_r, 1594);
    let edit_box = chain(vec![
        n("android.widget.ScrollView", "o4q", field, "fo", 1),
        n(LL, "", field, "", 1),
        n(LL, "d9e", field, "", 2),
        n(FL, &ids.input, field, "", 2),
        edit,
    ]);
    let (vl, vr) = (tgm_r - 112, tgm_r - 18);
    let voice_hint = chain(vec![
        n(FL, "", rect(vl, 1522, vr, 1594), "", 1),
        n(VIEW, "", rect(vl, 1522, vr, 1594), "", 1),
    ]);
    let dictate = chain(vec![
        n(LL, "", rect(tgm_r - 76, 1529, vr, 1587), "", 2).idx(1),
        n(FL, "u8o", rect(tgm_r - 76, 1529, vr, 1587), "", 3),
        n(FL, "", rect(tgm_r - 76, 1529, vr, 1587), "", 1),
        n(
            FL,
            "ued",
            rect(tgm_r - 87, 1518, tgm_r - 7, 1598),
            "clfo",
            1,
        )
        .desc("听写")
        .act(Action::Absorb),
    ]);
    let smr = n(FL, "smr", rect(vl, 1522, vr, 1594), "", 2)
        .idx(1)
        .kids(vec![voice_hint, dictate]);
    let tgm = chain(vec![
        n(LL, "tgm", rect(72, 1522, tgm_r, 1594), "", 2).idx(1),
        n(RL, "o44", field, "", 1).kids(vec![edit_box, smr]),
    ]);
    let voice = chain(vec![
        n(RL, "", rect(0, 1522, 72, 1594), "", 1),
        n(LL, "", rect(0, 1529, 72, 1594), "", 1),
        n(IB, "bpe", rect(3, 1518, 83, 1598), "clfo", 2)
            .desc("切换到按住说话")
            .act(Action::Absorb)
            .role(Role::Avatar),
    ]);
    let emoji = n(RL, "", rect(tgm_r, 1529, more_l, 1587), "", 3)
        .idx(2)
        .kids(vec![
            n(
                IB,
                "bqr",
                rect(tgm_r - 11, 1518, more_l + 11, 1598),
                "clfo",
                1,
            )
            .desc("表情")
            .act(Action::Absorb)
            .role(Role::Avatar),
        ]);
    let more = if has_text {
        vec![
            n(
                "android.widget.Button",
                &ids.send_button,
                rect(more_l + 6, 1532, 708, 1584),
                "clfo",
                1,
            )
            .text("发送")
            .act(Action::Send)
            .role(Role::Bubble(0x07C160)),
        ]
    } else {
        vec![
            n(IB, "bjz", rect(637, 1518, 717, 1598), "clfo", 1)
                .desc("更多功能按钮，已折叠")
                .act(Action::Absorb)
                .role(Role::Avatar),
            n(IV, "bk0", rect(692, 1529, 706, 1543), "", 2).role(Role::Dot),
        ]
    };
    let bqn = n(LL, "bqn", rect(more_l, 1522, 720, 1594), "", 4)
        .idx(3)
        .kids(vec![
            n(RL, "", rect(more_l, 1522, 720, 1594), "", 2).kids(more),
        ]);
    let qhl = n(LL, "qhl", rect(0, 1508, 720, 1594), "", 2).kids(vec![voice, tgm, emoji, bqn]);
    let bar = rect(0, 1507, 720, 1608);
    chain(vec![
        n(FL, "k52", bar, "", 2)
            .idx(1)
            .role(Role::Fill(BG_BAR))
            .act(Action::Absorb),
        n(RL, "bfp", bar, "", 1),
        n(LL, "bl8", bar, "", 2).idx(1),
        n(LL, "slj", rect(0, 1507, 720, 1594), "", 1),
        n(LL, "bl9", rect(0, 1507, 720, 1594), "", 1),
        qhl,
    ])
}

fn chat_window(w: &WeChat, chat: &Chat, o: &BuildOpts<'_>) -> Node {
    let ids = o.ids;
    let full = rect(0, 0, 720, 1608);
    let area = rect(0, 162, 720, 1507);
    let scroll = w.chat_scroll.clamp(0, chat_max_scroll(chat));

    let mut rows = Vec::new();
    let mut y = ACTION_BAR_BOTTOM - scroll;
    for i in 0..chat.messages.len() {
        let h = row_height(chat, i);
        if y + h > ACTION_BAR_BOTTOM && y < BOTTOM_BAR_TOP {
            let idx = rows.len() as u32;
            if let Some(row) = message_row(chat, i, y, o).clipped(&area) {
                rows.push(row.idx(idx));
            }
        }
        y += h;
    }
    let others_unread: u32 = w
        .chats
        .iter()
        .filter(|c| !c.muted && c.name != chat.name)
        .map(|c| c.unread)
        .sum();

    let list = n(
        "androidx.recyclerview.widget.RecyclerView",
        &ids.message_list,
        area,
        "loscfo",
        2,
    )
    .idx(1)
    .act(Action::Absorb)
    .kids(rows);
    let list_frame = n(FL, "", area, "", 2).idx(3).kids(vec![
        chain(vec![
            n(FL, "", area, "", 2),
            n(FL, "bm6", area, "", 1),
            list,
        ]),
        n(FL, "", area, "fo", 1).idx(1),
    ]);
    let bki = n(FL, "bki", area, "", 1).kids(vec![
        n(FL, "bl0", area, "", 7).idx(1),
        n(FL, "jln", area, "", 8).idx(2),
        list_frame,
        n(FL, "bk_", area, "", 1)
            .idx(4)
            .kids(vec![n(IV, "bka", area, "", 1)]),
        n(LL, "bm4", rect(510, 187, 720, 267), "clfo", 12)
            .idx(5)
            .naf(),
    ]);
    let below = rect(0, 162, 720, 1608);
    let bqg = n(LL, "bqg", below, "", 1)
        .idx(1)
        .kids(vec![bki, input_bar(chat, w.input_focused, ids)]);
    let bqh = n(FL, "bqh", below, "", 3)
        .idx(1)
        .kids(vec![n(FL, "bls", below, "", 2), bqg]);
    let bkb = n(LL, "bkb", full, "cllofo", 1)
        .role(Role::Fill(BG_CHAT))
        .act(Action::Absorb)
        .kids(vec![chat_action_bar(chat, others_unread, o), bqh]);
    app_frame(chain(vec![
        n(LL, "bks", full, "", 3),
        n(FL, "nsv", full, "fo", 1),
        n(FL, "jlt", full, "", 1),
        n(RL, "", full, "", 1),
        bkb,
    ]))
}

/// What WeChat ≥ 8.0.55 shows uiautomator: one empty node, no tree.
pub fn hidden_app_window() -> Node {
    n("android.widget.FrameLayout", "", rect(0, 0, 0, 0), "", 0)
}
