//! The reader against dumps captured on real phones (fixtures/real-dumps/).
//!
//! Each expectation below is transcribed from the fixtures' README ("Expected extraction"),
//! not from the reader's output: a difference is a bug in the reader. The insta snapshots
//! pin the whole reading (bounds included) so any change shows up in review.

use std::path::PathBuf;

use tapwire_device_agent::screen::{ItemKind, Side, Unread};
use tapwire_device_agent::{Dump, ScreenKind, ScreenReading, UiMaps, read_screen};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(file: &str, map: &str) -> ScreenReading {
    let maps = UiMaps::load_dir(&root().join("ui-maps")).expect("maps");
    let map = maps.by_name(map).expect("map by name");
    let raw =
        std::fs::read_to_string(root().join("fixtures/real-dumps").join(file)).expect("fixture");
    let dump = Dump::parse(&raw).expect("real dump parses");
    read_screen(&dump, map)
}

/// (kind, side, sender, text) per chat item.
type ItemRow<'a> = (ItemKind, Side, Option<&'a str>, Option<&'a str>);

fn items(reading: &ScreenReading) -> Vec<ItemRow<'_>> {
    reading
        .chat
        .as_ref()
        .expect("a chat")
        .messages
        .iter()
        .map(|m| (m.kind, m.side, m.sender.as_deref(), m.text.as_deref()))
        .collect()
}

/// (title, preview, time, unread, muted) per row.
type Row<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Unread,
    Option<bool>,
);

fn rows(reading: &ScreenReading) -> Vec<Row<'_>> {
    reading
        .list
        .as_ref()
        .expect("a list")
        .rows
        .iter()
        .map(|r| {
            (
                r.title.as_deref(),
                r.preview.as_deref(),
                r.time.as_deref(),
                r.unread.clone(),
                r.muted,
            )
        })
        .collect()
}

#[test]
fn chat_8_0_group() {
    use ItemKind::*;
    use Side::*;
    let reading = read("chat-8.0.x-2026-01-group.xml", "wechat-8.0");
    assert_eq!(reading.kind, ScreenKind::Chat);
    let chat = reading.chat.as_ref().expect("chat");
    assert_eq!(chat.title, None, "the 8.0 title bar holds no text");
    assert_eq!(chat.back_unread, Some(1));
    let input = chat.input.as_ref().expect("input box");
    assert_eq!(input.text, "");
    assert_eq!(chat.send_button, None);
    assert!(chat.back_button.is_some());
    let expected: Vec<ItemRow<'_>> = vec![
        (TimeDivider, Centre, None, Some("2025年12月29日 10:07")),
        (
            Text,
            Left,
            Some("A柚子设计"),
            Some(
                "找2分钟左右的ae动画成品   科普类叙事类历史类红色类  要网上没有的 有ae源文件的  现在要  到手200",
            ),
        ),
        (TimeDivider, Centre, None, Some("2025年12月29日 10:11")),
        (
            System,
            Centre,
            None,
            Some("\"..刘雨欣（定金留档）\"邀请\"Tom\"加入了群聊"),
        ),
        (
            System,
            Centre,
            None,
            Some("\"Tom\"与群里其他人都不是朋友关系，请注意隐私安全"),
        ),
        (
            Text,
            Left,
            Some("A柚子设计"),
            Some(
                "找2分钟左右的ae动画成品   科普类叙事类历史传统节日 比较大众能水过去的  要网上没有的 有ae源文件的  现在要  到手200",
            ),
        ),
        (TimeDivider, Centre, None, Some("周四 12:09")),
        (Text, Left, Some("陈静"), Some("用抖音赚..加\n收代理")),
        (TimeDivider, Centre, None, Some("昨天 12:51")),
        (
            Text,
            Left,
            Some("万事如意，大吉大利"),
            Some("@杨帆\u{2005}，做什么的，我加入可以吗"),
        ),
    ];
    assert_eq!(items(&reading), expected);
    let avatars: Vec<Option<&str>> = chat
        .messages
        .iter()
        .filter(|m| m.kind == Text)
        .map(|m| m.avatar.as_deref())
        .collect();
    assert_eq!(
        avatars,
        [
            Some("A柚子设计"),
            Some("A柚子设计"),
            Some("陈静"),
            Some("万事如意，大吉大利")
        ]
    );
    insta::assert_json_snapshot!(reading);
}

#[test]
fn list_8_0_groups() {
    let reading = read("list-8.0.x-2026-01-groups.xml", "wechat-8.0");
    assert_eq!(reading.kind, ScreenKind::ConversationList);
    let list = reading.list.as_ref().expect("list");
    assert_eq!(list.title.as_deref(), Some("微信(1)"));
    assert_eq!(list.tab_unread, Some(1));
    let dot = Unread::Dot;
    let none = Unread::None;
    let expected: Vec<Row<'_>> = vec![
        (
            Some("PS平面设计技术交流学习"),
            Some("[11条] 代办执照-商标-会计服务: 注册公司 包含执…"),
            Some("09:44"),
            dot.clone(),
            Some(true),
        ),
        (
            Some("设计接单群2群"),
            Some("[15条] 平面立体设计-渲染特效: 湖南宿渊设计 承…"),
            Some("昨天"),
            dot.clone(),
            Some(true),
        ),
        (
            Some("读书会"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(true),
        ),
        (
            Some("柚子设计1\u{fe0f}\u{20e3}接单闲聊群"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(true),
        ),
        (
            Some("山海设计群(2群)"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(true),
        ),
        (
            Some("小白设计、创意工坊"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(false),
        ),
        (
            Some("产品二期项目执行-后期…"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(false),
        ),
        (
            Some("线上摸鱼群"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(false),
        ),
        (
            Some("林海带货视频剪辑群"),
            Some(""),
            Some("2025年12月24日"),
            none.clone(),
            Some(false),
        ),
        (
            Some("王芳剪辑三群"),
            Some("[74条] 春雨晨光: 1分钟，需要天天剪一条，听得…"),
            Some("11:17"),
            dot.clone(),
            Some(true),
        ),
        (
            Some("优质单价-后期高手-派单接单精…"),
            Some("[@所有人] A专业配音（小雅全天24小时在线）:…"),
            Some("11:12"),
            dot.clone(),
            Some(true),
        ),
    ];
    assert_eq!(rows(&reading), expected);
    assert_eq!(list.rows[0].preview_count(), Some(11));
    assert_eq!(list.rows[10].preview_count(), None);
    insta::assert_json_snapshot!(reading);
}

#[test]
fn list_6_7_multiwindow_reads_only_the_list_window() {
    let reading = read("list-6.7.x-multiwindow.xml", "wechat-6.7");
    assert_eq!(reading.kind, ScreenKind::ConversationList);
    let list = reading.list.as_ref().expect("list");
    assert_eq!(list.title.as_deref(), Some("微信"));
    let n = Unread::None;
    let expected: Vec<Row<'_>> = vec![
        (
            Some("车友之家【15-20万】选车..."),
            Some("万事顺意: 对于恩施地区没有差别"),
            Some("下午1:54"),
            n.clone(),
            None,
        ),
        (
            Some("腾讯新闻"),
            Some("海上丝路看今朝：2018习近平亚太行"),
            Some("下午1:44"),
            n.clone(),
            None,
        ),
        (
            Some("车友之家【15-20万】选车..."),
            Some("老渔夫: 下载老司机，看看"),
            Some("早上11:23"),
            n.clone(),
            None,
        ),
        (
            Some("张伟"),
            Some("617619"),
            Some("11月24日"),
            n.clone(),
            None,
        ),
        (
            Some("海阔天空"),
            Some("我通过了你的朋友验证请求，现在我们..."),
            Some("11月23日"),
            n.clone(),
            None,
        ),
        (
            Some("乐车邦4S店养车"),
            Some("天冷了，开暖风真的很耗油吗？..."),
            Some("11月23日"),
            n.clone(),
            None,
        ),
        (
            Some("微信团队"),
            Some("欢迎你再次回到微信。如果你在使用过..."),
            Some("11月23日"),
            n.clone(),
            None,
        ),
    ];
    assert_eq!(rows(&reading), expected);
    assert!(reading.chat.is_none());
    assert!(reading.dialog.is_none(), "the + menu is not a dialog");
    insta::assert_json_snapshot!(reading);
}

#[test]
fn list_6_7_with_private_chat_layer() {
    use ItemKind::*;
    use Side::*;
    let reading = read("list-6.7.x-with-private-chat-layer.xml", "wechat-6.7");
    assert_eq!(
        reading.kind,
        ScreenKind::Chat,
        "the chat layer covers the list"
    );
    let chat = reading.chat.as_ref().expect("chat");
    assert_eq!(chat.title.as_deref(), Some("Alice"));
    let expected: Vec<ItemRow<'_>> = vec![
        (TimeDivider, Centre, None, Some("周二 13:19")),
        (Unknown, Left, None, None),
        (TimeDivider, Centre, None, Some("昨天 晚上7:12")),
        (Unknown, Left, None, None),
    ];
    assert_eq!(items(&reading), expected);
    let bubbles: Vec<String> = chat
        .messages
        .iter()
        .filter(|m| m.kind == Unknown)
        .map(|m| format!("{}", m.bounds))
        .collect();
    assert_eq!(bubbles, ["[143,365][869,537]", "[143,699][306,809]"]);
    assert!(
        chat.messages
            .iter()
            .filter(|m| m.kind == Unknown)
            .all(|m| m.avatar.as_deref() == Some("Alice"))
    );

    let list = reading
        .list
        .as_ref()
        .expect("the list under the chat layer");
    assert_eq!(list.title.as_deref(), Some("微信(5)"));
    let n = Unread::None;
    let expected: Vec<Row<'_>> = vec![
        (
            Some("腾讯新闻"),
            Some("五千猴子席卷印度首都 政府悬赏抓猴"),
            Some("下午4:44"),
            Unread::Count(4),
            None,
        ),
        (Some("Alice"), Some("哈哈"), Some("昨天"), n.clone(), None),
        (
            Some("汽车店-小美"),
            Some("我通过了你的朋友验证请求，现在我们可以…"),
            Some("昨天"),
            Unread::Count(1),
            None,
        ),
        (
            Some("王强、晴空万里、Alan、李文博、…"),
            Some("王强: [图片]"),
            Some("昨天"),
            n.clone(),
            None,
        ),
        (
            Some("陈少"),
            Some("你已添加了陈少，现在可以开始聊天了。"),
            Some("周二 "),
            n.clone(),
            None,
        ),
        (
            Some("海底捞火锅"),
            Some("Hi，我是海底捞微信客服，我会竭尽全力为您…"),
            Some("周二 "),
            n.clone(),
            None,
        ),
        (
            Some("Emma"),
            Some("我通过了你的朋友验证请求，现在我们可以…"),
            Some("周二 "),
            n.clone(),
            None,
        ),
        (
            Some("Nora"),
            Some("你已添加了Nora，现在可以开始聊天了。"),
            Some("周二 "),
            n.clone(),
            None,
        ),
        (
            Some("微信团队"),
            Some("微信安全提醒：为了你的帐号安全，暂时不允…"),
            Some("周二 "),
            n.clone(),
            None,
        ),
        (Some("王强"), Some("[图片]"), Some("周一 "), n.clone(), None),
        (None, None, None, n.clone(), None),
    ];
    assert_eq!(rows(&reading), expected);
    insta::assert_json_snapshot!(reading);
}

#[test]
fn hidden_tree_is_detected() {
    let maps = UiMaps::load_dir(&root().join("ui-maps")).expect("maps");
    let map = maps.by_name("wechat-8.0").expect("map");
    let raw = r#"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0"><node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="com.tencent.mm" content-desc="" checkable="false" checked="false" clickable="false" enabled="true" focusable="false" focused="false" scrollable="false" long-clickable="false" password="false" selected="false" bounds="[0,0][0,0]" /></hierarchy>"#;
    let reading = read_screen(&Dump::parse(raw).expect("parse"), map);
    assert_eq!(reading.kind, ScreenKind::HiddenTree);
}

#[test]
fn every_truncation_of_a_real_dump_is_an_error_not_a_panic() {
    let raw =
        std::fs::read_to_string(root().join("fixtures/real-dumps/chat-8.0.x-2026-01-group.xml"))
            .expect("fixture");
    let mut cut = raw.len() - 1;
    let mut checked = 0;
    while cut > 0 {
        if raw.is_char_boundary(cut) {
            assert!(Dump::parse(&raw[..cut]).is_err(), "cut at {cut} parsed");
            checked += 1;
        }
        cut = cut.saturating_sub(997);
    }
    assert!(checked > 50);
}
