//! The map drafter against the real dumps (fixtures/real-dumps/), with no UI map loaded:
//! a map drafted from a build's dumps must read those dumps exactly as the hand-written map
//! does. "Exactly" is the readings that `real_dumps.rs` pins in its snapshots
//! (tests/snapshots/real_dumps__*.snap), which are checked there against the fixtures'
//! README; so a drafted map that reads one title, time, side or bound differently fails here.
//!
//! The real fixtures came without `dumpsys package` text, so the version is given here as the
//! CLI's `--version` gives it.

use std::path::PathBuf;

use tapwire_device_agent::draft::{Confidence, Draft, DraftOptions, Finding, draft};
use tapwire_device_agent::dump::Node;
use tapwire_device_agent::screen::{ItemKind, Side, Unread};
use tapwire_device_agent::uimap::{Role, RoleSelector, Selector};
use tapwire_device_agent::{Dump, ScreenKind, ScreenReading, UiMap, UiMaps, Version, read_screen};

const LIST_8: &str = "list-8.0.x-2026-01-groups.xml";
const CHAT_8: &str = "chat-8.0.x-2026-01-group.xml";
const LIST_6: &str = "list-6.7.x-multiwindow.xml";
const LAYER_6: &str = "list-6.7.x-with-private-chat-layer.xml";

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn dumps(files: &[&str]) -> Vec<(String, Dump)> {
    files
        .iter()
        .map(|file| {
            let raw = std::fs::read_to_string(root().join("fixtures/real-dumps").join(file))
                .expect("fixture");
            (
                file.to_string(),
                Dump::parse(&raw).expect("real dump parses"),
            )
        })
        .collect()
}

fn draft_from(files: &[&str], version: &str) -> Draft {
    let options = DraftOptions::new(Version::parse(version).expect("version"), "--version");
    draft(&dumps(files), &options).expect("a draft")
}

fn drafted_map(files: &[&str], version: &str) -> UiMap {
    let draft = draft_from(files, version);
    draft
        .to_map()
        .unwrap_or_else(|e| panic!("the loader refuses the draft: {e}\n{}", draft.to_toml()))
}

fn read(file: &str, map: &UiMap) -> ScreenReading {
    let (_, dump) = dumps(&[file]).remove(0);
    read_screen(&dump, map)
}

/// The reading `real_dumps.rs` pinned for `test`, with the map's name set to `map`.
fn pinned(test: &str, map: &str) -> serde_json::Value {
    let path = root().join(format!(
        "device-agent/tests/snapshots/real_dumps__{test}.snap"
    ));
    let snap = std::fs::read_to_string(&path).expect("snapshot");
    let json = snap
        .splitn(3, "---\n")
        .nth(2)
        .unwrap_or_else(|| panic!("{} has no insta header", path.display()));
    let mut value: serde_json::Value = serde_json::from_str(json).expect("snapshot JSON");
    value["map"] = map.into();
    value
}

fn assert_reads_as_pinned(file: &str, test: &str, map: &UiMap, toml: &str) {
    let reading = serde_json::to_value(read(file, map)).expect("JSON");
    assert_eq!(
        reading,
        pinned(test, &map.name),
        "the drafted map reads {file} differently from the hand-written map; the draft:\n{toml}"
    );
}

fn selector(draft: &Draft, role: Role) -> Option<(&RoleSelector, Confidence)> {
    match draft.finding(role)? {
        Finding::Found {
            selector,
            confidence,
            ..
        } => Some((selector, *confidence)),
        Finding::Missing { .. } => None,
    }
}

fn id(role_id: &str) -> RoleSelector {
    RoleSelector::One(Selector {
        id: Some(role_id.into()),
        ..Selector::default()
    })
}

#[test]
fn a_map_drafted_from_the_8_0_dumps_reads_them_as_the_readme_says() {
    let files = [LIST_8, CHAT_8];
    let draft = draft_from(&files, "8.0.50");
    let toml = draft.to_toml();
    let map = drafted_map(&files, "8.0.50");
    assert_reads_as_pinned(LIST_8, "list_8_0_groups", &map, &toml);
    assert_reads_as_pinned(CHAT_8, "chat_8_0_group", &map, &toml);

    // The README's tables, spot-checked so this file says what "as pinned" means.
    let list = read(LIST_8, &map);
    assert_eq!(list.kind, ScreenKind::ConversationList);
    let list = list.list.expect("list");
    assert_eq!(list.title.as_deref(), Some("微信(1)"));
    assert_eq!(list.tab_unread, Some(1));
    assert_eq!(list.rows.len(), 11);
    let row = &list.rows[9];
    assert_eq!(row.title.as_deref(), Some("王芳剪辑三群"));
    assert_eq!(
        row.preview.as_deref(),
        Some("[74条] 春雨晨光: 1分钟，需要天天剪一条，听得…")
    );
    assert_eq!(row.time.as_deref(), Some("11:17"));
    assert_eq!((row.unread.clone(), row.muted), (Unread::Dot, Some(true)));
    assert_eq!(list.rows[2].preview.as_deref(), Some(""));
    assert_eq!(
        (list.rows[5].unread.clone(), list.rows[5].muted),
        (Unread::None, Some(false))
    );

    let chat = read(CHAT_8, &map);
    assert_eq!(chat.kind, ScreenKind::Chat);
    let chat = chat.chat.expect("chat");
    assert_eq!(chat.title, None);
    assert_eq!(chat.back_unread, Some(1));
    assert!(chat.back_button.is_some());
    assert_eq!(chat.input.as_ref().map(|i| i.text.as_str()), Some(""));
    let kinds: Vec<(ItemKind, Side, Option<&str>)> = chat
        .messages
        .iter()
        .map(|m| (m.kind, m.side, m.sender.as_deref()))
        .collect();
    use ItemKind::*;
    use Side::*;
    assert_eq!(
        kinds,
        [
            (TimeDivider, Centre, None),
            (Text, Left, Some("A柚子设计")),
            (TimeDivider, Centre, None),
            (System, Centre, None),
            (System, Centre, None),
            (Text, Left, Some("A柚子设计")),
            (TimeDivider, Centre, None),
            (Text, Left, Some("陈静")),
            (TimeDivider, Centre, None),
            (Text, Left, Some("万事如意，大吉大利")),
        ]
    );
    assert_eq!(
        chat.messages[9].text.as_deref(),
        Some("@杨帆\u{2005}，做什么的，我加入可以吗")
    );

    // What the issue names, by the ids the real dumps show.
    assert_eq!(
        selector(&draft, Role::TabLabel).map(|s| s.0),
        Some(&id("icon_tv"))
    );
    assert_eq!(
        selector(&draft, Role::MessageAvatar).map(|s| s.0),
        Some(&id("bk1"))
    );
    assert_eq!(
        selector(&draft, Role::RowAvatar).map(|s| s.0),
        Some(&id("a_4"))
    );
    assert_eq!(
        selector(&draft, Role::RowContainer).map(|s| s.0),
        Some(&id("cj0"))
    );
    assert_eq!(
        selector(&draft, Role::Input).map(|s| s.0),
        Some(&RoleSelector::One(Selector {
            id: Some("bkk".into()),
            class: Some("android.widget.EditText".into()),
            ..Selector::default()
        }))
    );
    assert_eq!(
        selector(&draft, Role::ChatBack).map(|s| s.0),
        Some(&RoleSelector::One(Selector {
            id: Some("a4p".into()),
            desc: Some("返回".into()),
            ..Selector::default()
        }))
    );
    assert_eq!(
        selector(&draft, Role::ConversationRow),
        Some((&id("cj1"), Confidence::High))
    );
}

#[test]
fn a_map_drafted_from_the_6_7_dumps_reads_them_as_the_6_7_map_does() {
    let files = [LIST_6, LAYER_6];
    let toml = draft_from(&files, "6.7.3").to_toml();
    let map = drafted_map(&files, "6.7.3");
    assert_reads_as_pinned(
        LIST_6,
        "list_6_7_multiwindow_reads_only_the_list_window",
        &map,
        &toml,
    );
    assert_reads_as_pinned(LAYER_6, "list_6_7_with_private_chat_layer", &map, &toml);

    // And the same as what the 6.7 map reads today, in case the snapshots fall behind it.
    let maps = UiMaps::load_dir(&root().join("ui-maps")).expect("maps");
    let hand = maps.by_name("wechat-6.7").expect("the 6.7 map");
    for file in files {
        let mut drafted = read(file, &map);
        drafted.map = hand.name.clone();
        assert_eq!(drafted, read(file, hand), "{file}\n{toml}");
    }
    let layer = read(LAYER_6, &map);
    assert_eq!(layer.chat.and_then(|c| c.title).as_deref(), Some("Alice"));
    let rows = layer.list.expect("list").rows;
    assert_eq!(rows[0].unread, Unread::Count(4));
    assert_eq!(rows[4].time.as_deref(), Some("周二 "));
}

#[test]
fn a_draft_without_a_chat_still_gives_the_list_roles() {
    let draft = draft_from(&[LIST_6], "6.7.3");
    let toml = draft.to_toml();
    for role in [
        Role::ConversationList,
        Role::ConversationRow,
        Role::RowTitle,
        Role::RowPreview,
        Role::RowTime,
        Role::RowAvatar,
        Role::TabLabel,
        Role::ScreenTitle,
    ] {
        assert!(
            selector(&draft, role).is_some(),
            "{role:?} missing:\n{toml}"
        );
    }
    for role in [Role::MessageList, Role::Input, Role::ChatBack] {
        match draft.finding(role) {
            Some(Finding::Missing { why }) => assert!(why.contains("no chat"), "{why}"),
            other => panic!("{role:?}: {other:?}"),
        }
    }
    let map = draft.to_map().expect("loads");
    assert_reads_as_pinned(
        LIST_6,
        "list_6_7_multiwindow_reads_only_the_list_window",
        &map,
        &toml,
    );
    assert!(toml.contains("# missing: message_list — no chat"), "{toml}");

    let list_only = draft_from(&[LIST_8], "8.0.50");
    assert_reads_as_pinned(
        LIST_8,
        "list_8_0_groups",
        &list_only.to_map().expect("loads"),
        &list_only.to_toml(),
    );
}

/// The check above can fail: a draft that never saw the chat cannot read it.
#[test]
fn a_draft_reads_only_what_its_dumps_showed() {
    let map = drafted_map(&[LIST_8], "8.0.50");
    let chat = read(CHAT_8, &map);
    assert_ne!(chat.kind, ScreenKind::Chat);
    let pinned = pinned("chat_8_0_group", &map.name);
    assert_ne!(serde_json::to_value(chat).expect("JSON"), pinned);
}

#[test]
fn the_draft_is_written_in_the_format_of_the_hand_written_maps() {
    let draft = draft_from(&[LIST_8, CHAT_8], "8.0.50");
    let toml = draft.to_toml();
    let map = draft.to_map().expect("loads");
    assert_eq!(map.name, "wechat-8.0.50-draft");
    assert_eq!(map.package, "com.tencent.mm");
    let v = |s| Version::parse(s).expect("version");
    assert!(map.covers(&v("8.0.50")) && !map.covers(&v("8.0.51")) && !map.covers(&v("8.0.49")));
    assert!(map.hidden_tree_from.is_none());
    assert!(!toml.contains("hidden_tree_from"), "{toml}");
    assert!(
        toml.contains("min_version = \"8.0.50\"\nmax_version = \"8.0.51\""),
        "{toml}"
    );

    // Every role has a line: a selector under its confidence, or a `# missing` comment.
    let lines: Vec<&str> = toml.lines().collect();
    for role in Role::ALL {
        let key = role.key();
        let assigned = lines
            .iter()
            .position(|l| l.starts_with(&format!("{key} = ")));
        match assigned {
            Some(at) => {
                let above = lines[..at]
                    .iter()
                    .rev()
                    .find(|l| !l.starts_with("#   "))
                    .expect("a comment above");
                assert!(
                    ["# high: ", "# medium: ", "# low: "]
                        .iter()
                        .any(|p| above.starts_with(p)),
                    "{key}: {above}"
                );
            }
            None => assert!(
                toml.contains(&format!("# missing: {key} — ")),
                "{key} has neither a selector nor a `# missing` line:\n{toml}"
            ),
        }
    }
    assert!(toml.contains("# high: 11 of 11 rows agree\nconversation_row = { id = \"cj1\" }"));
    assert!(toml.contains("# missing: send_button — "), "{toml}");
    assert!(toml.contains("# missing: row_unread_badge — "), "{toml}");
}

/// The 8.0 map names the back arrow by id and label together: both must match.
#[test]
fn the_8_0_back_arrow_needs_both_its_id_and_its_label() {
    let maps = UiMaps::load_dir(&root().join("ui-maps")).expect("maps");
    let map = maps.by_name("wechat-8.0").expect("the 8.0 map");
    let node = |id: &str, desc: &str| Node {
        resource_id: format!("com.tencent.mm:id/{id}").into(),
        content_desc: desc.into(),
        ..Node::default()
    };
    assert!(map.is(Role::ChatBack, &node("a4p", "返回")));
    assert!(!map.is(Role::ChatBack, &node("jc", "返回")));
    assert!(!map.is(Role::ChatBack, &node("a4p", "")));
}

/// One `<node>` in the stock `uiautomator dump` attribute set; an app `id` without its
/// package.
fn n(id: &str, class: &str, text: &str, desc: &str, bounds: &str, children: &[String]) -> String {
    let id = if id.is_empty() || id.contains(":id/") {
        id.to_string()
    } else {
        format!("com.tencent.mm:id/{id}")
    };
    let open = format!(
        r#"<node index="0" text="{text}" resource-id="{id}" class="{class}" package="com.tencent.mm" content-desc="{desc}" checkable="false" checked="false" clickable="false" enabled="true" focusable="false" focused="false" scrollable="false" long-clickable="false" password="false" selected="false" bounds="{bounds}""#
    );
    if children.is_empty() {
        format!("{open} />")
    } else {
        format!("{open}>{}</node>", children.concat())
    }
}

fn hierarchy(root: String) -> Dump {
    let xml = format!(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">{root}</hierarchy>"
    );
    Dump::parse(&xml).expect("synthetic dump parses")
}

const TEXT: &str = "android.widget.TextView";
const IMAGE: &str = "android.widget.ImageView";
const LINEAR: &str = "android.widget.LinearLayout";

/// A made-up build whose ids match no real one: a list with a number badge at the row's right
/// end and a dot on an avatar, and a private chat where both sides wrote, with text in the
/// input (so 发送 shows) and the chat's name in the title bar.
fn made_up_build() -> Vec<(String, Dump)> {
    let row = |top: i32, title: &str, time: &str, preview: &str, mark: String| {
        let b = |l: i32, t: i32, r: i32, bt: i32| format!("[{l},{}][{r},{}]", top + t, top + bt);
        n(
            "zr",
            LINEAR,
            "",
            "",
            &b(0, 0, 720, 130),
            &[
                n("zav", IMAGE, "", "", &b(29, 21, 115, 107), &[]),
                mark,
                n("zt", TEXT, title, "", &b(137, 25, 560, 67), &[]),
                n("zm", TEXT, time, "", &b(600, 25, 691, 55), &[]),
                n("zp", TEXT, preview, "", &b(137, 71, 640, 103), &[]),
            ],
        )
    };
    let badge = n("zb", TEXT, "3", "", "[650,237][691,265]", &[]);
    let dot = n("zd", IMAGE, "", "", "[105,308][123,326]", &[]);
    let tab = |l: i32, label: &str| {
        n(
            "ztab",
            TEXT,
            label,
            "",
            &format!("[{l},1560][{},1590]", l + 60),
            &[],
        )
    };
    let list = hierarchy(n(
        "",
        "android.widget.FrameLayout",
        "",
        "",
        "[0,0][720,1600]",
        &[
            n(
                "android:id/text1",
                TEXT,
                "微信(4)",
                "",
                "[300,98][420,140]",
                &[],
            ),
            n(
                "zl",
                "android.widget.ListView",
                "",
                "",
                "[0,162][720,1500]",
                &[
                    row(162, "李雷", "11:20", "在吗", badge),
                    row(292, "韩梅梅", "昨天", "[2条] 好的", dot),
                    row(422, "家人群", "周二", "妈妈: 晚上回来吃饭", String::new()),
                ],
            ),
            n(
                "zbar",
                LINEAR,
                "",
                "",
                "[0,1507][720,1600]",
                &[
                    tab(60, "微信"),
                    tab(240, "通讯录"),
                    tab(420, "发现"),
                    tab(600, "我"),
                ],
            ),
        ],
    ));
    let message = |top: i32, own: bool, name: &str, text: &str| {
        let (avatar, bubble) = if own {
            ("[615,0][709,94]", "[350,10][609,90]")
        } else {
            ("[11,0][105,94]", "[105,10][400,90]")
        };
        let at = |b: &str| {
            let nums: Vec<i32> = b
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().expect("number"))
                .collect();
            format!(
                "[{},{}][{},{}]",
                nums[0],
                nums[1] + top,
                nums[2],
                nums[3] + top
            )
        };
        let parts = [
            n(
                "zab",
                "android.widget.RelativeLayout",
                "",
                "",
                &at(avatar),
                &[n(
                    "zmav",
                    IMAGE,
                    "",
                    &format!("{name}头像"),
                    &at(avatar),
                    &[],
                )],
            ),
            n("zmt", TEXT, text, "", &at(bubble), &[]),
        ];
        let parts = if own {
            [parts[1].clone(), parts[0].clone()]
        } else {
            parts
        };
        n(
            "zrow",
            "android.widget.RelativeLayout",
            "",
            "",
            &format!("[0,{top}][720,{}]", top + 100),
            &[n(
                "zlay",
                LINEAR,
                "",
                "",
                &format!("[0,{top}][720,{}]", top + 100),
                &parts,
            )],
        )
    };
    let chat = hierarchy(n(
        "",
        "android.widget.FrameLayout",
        "",
        "",
        "[0,0][720,1600]",
        &[
            n(
                "",
                LINEAR,
                "",
                "",
                "[0,76][720,162]",
                &[
                    n("zback", IMAGE, "", "返回", "[0,76][57,162]", &[]),
                    n("zbn", TEXT, "7", "", "[57,101][93,137]", &[]),
                    n("zttl", TEXT, "李雷", "", "[320,100][400,137]", &[]),
                ],
            ),
            n(
                "zml",
                "androidx.recyclerview.widget.RecyclerView",
                "",
                "",
                "[0,162][720,1500]",
                &[
                    n("zdiv", TEXT, "11:19", "", "[330,170][390,200]", &[]),
                    message(210, false, "李雷", "在吗"),
                    message(310, true, "我", "在的，什么事？"),
                    n(
                        "",
                        LINEAR,
                        "",
                        "",
                        "[0,410][720,470]",
                        &[n(
                            "zmt",
                            TEXT,
                            "你撤回了一条消息",
                            "",
                            "[200,420][520,460]",
                            &[],
                        )],
                    ),
                ],
            ),
            n(
                "zin",
                "android.widget.EditText",
                "好的",
                "",
                "[86,1510][560,1590]",
                &[],
            ),
            n(
                "zsend",
                "android.widget.Button",
                "发送",
                "",
                "[600,1510][710,1590]",
                &[],
            ),
        ],
    ));
    vec![("list.xml".into(), list), ("chat.xml".into(), chat)]
}

#[test]
fn own_messages_the_send_button_and_the_chat_title_of_a_made_up_build() {
    let dumps = made_up_build();
    let draft = draft(
        &dumps,
        &DraftOptions::new(Version::parse("9.1.2").expect("version"), "--version"),
    )
    .expect("a draft");
    let toml = draft.to_toml();
    let map = draft.to_map().expect("loads");
    assert!(toml.contains("max_version = \"9.1.3\""), "{toml}");
    assert_eq!(
        selector(&draft, Role::SendButton).map(|s| s.0),
        Some(&id("zsend")),
        "{toml}"
    );
    assert_eq!(
        selector(&draft, Role::ChatTitle).map(|s| s.0),
        Some(&id("zttl")),
        "{toml}"
    );
    assert_eq!(
        selector(&draft, Role::RowUnreadBadge).map(|s| s.0),
        Some(&id("zb")),
        "{toml}"
    );
    assert_eq!(
        selector(&draft, Role::RowUnreadDot).map(|s| s.0),
        Some(&id("zd")),
        "{toml}"
    );
    assert!(toml.contains("# missing: message_sender — "), "{toml}");
    assert!(toml.contains("1 left (others), 1 right (own)"), "{toml}");

    let list = read_screen(&dumps[0].1, &map).list.expect("list");
    assert_eq!(list.title.as_deref(), Some("微信(4)"));
    let rows: Vec<(Option<&str>, Option<&str>, Unread)> = list
        .rows
        .iter()
        .map(|r| (r.title.as_deref(), r.time.as_deref(), r.unread.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (Some("李雷"), Some("11:20"), Unread::Count(3)),
            (Some("韩梅梅"), Some("昨天"), Unread::Dot),
            (Some("家人群"), Some("周二"), Unread::None),
        ]
    );

    let reading = read_screen(&dumps[1].1, &map);
    assert_eq!(reading.kind, ScreenKind::Chat);
    let chat = reading.chat.expect("chat");
    assert_eq!(chat.title.as_deref(), Some("李雷"));
    assert_eq!(chat.back_unread, Some(7));
    assert!(chat.send_button.is_some());
    assert_eq!(chat.input.map(|i| i.text).as_deref(), Some("好的"));
    let items: Vec<(ItemKind, Side, Option<&str>)> = chat
        .messages
        .iter()
        .map(|m| (m.kind, m.side, m.text.as_deref()))
        .collect();
    assert_eq!(
        items,
        [
            (ItemKind::TimeDivider, Side::Centre, Some("11:19")),
            (ItemKind::Text, Side::Left, Some("在吗")),
            (ItemKind::Text, Side::Right, Some("在的，什么事？")),
            (ItemKind::System, Side::Centre, Some("你撤回了一条消息")),
        ]
    );
    assert!(chat.messages[2].is_own());
}

#[test]
fn a_hidden_dump_is_skipped_and_said_so() {
    let hidden = hierarchy(n(
        "",
        "android.widget.FrameLayout",
        "",
        "",
        "[0,0][0,0]",
        &[],
    ));
    let mut dumps = made_up_build();
    dumps.push(("hidden.xml".into(), hidden.clone()));
    let options = DraftOptions::new(Version::parse("8.0.56").expect("version"), "--version");
    let drafted = draft(&dumps, &options).expect("a draft");
    assert_eq!(drafted.hidden_tree_from.as_deref(), Some("8.0.56"));
    assert!(
        drafted
            .sources
            .iter()
            .any(|s| s.starts_with("hidden.xml: skipped"))
    );
    assert!(drafted.to_map().expect("loads").hidden_tree_from.is_some());

    let only_hidden = draft(&[("hidden.xml".into(), hidden)], &options);
    let err = only_hidden.expect_err("nothing to draft from").to_string();
    assert!(err.contains("hidden.xml"), "{err}");
}

/// Roles the reader does not use (row_avatar, row_container, message_row, …) are not held
/// by the readings above; the ids are, wherever a hand-written map names one too.
#[test]
fn the_drafted_ids_are_the_hand_written_maps_ids() {
    let maps = UiMaps::load_dir(&root().join("ui-maps")).expect("maps");
    for (files, version, hand) in [
        (vec![LIST_8, CHAT_8], "8.0.50", "wechat-8.0"),
        (vec![LIST_6, LAYER_6], "6.7.3", "wechat-6.7"),
    ] {
        let hand = maps.by_name(hand).expect("hand-written map");
        let draft = draft_from(&files, version);
        let ids = |selector: &RoleSelector| -> Vec<Option<String>> {
            match selector {
                RoleSelector::One(one) => vec![one.id.clone()],
                RoleSelector::Any(many) => many.iter().map(|s| s.id.clone()).collect(),
            }
        };
        let mut compared = 0;
        for role in Role::ALL {
            if let (Some(hand_selector), Some((drafted, _))) =
                (hand.selector(*role), selector(&draft, *role))
            {
                assert_eq!(
                    ids(drafted),
                    ids(hand_selector),
                    "{}: {}\n{}",
                    hand.name,
                    role.key(),
                    draft.to_toml()
                );
                compared += 1;
            }
        }
        assert!(
            compared >= 19,
            "{}: only {compared} roles compared",
            hand.name
        );
    }
}
