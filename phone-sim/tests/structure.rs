//! Holds the sim's 8.0.x dumps against the real dumps in fixtures/real-dumps/: every
//! root-to-leaf path of resource ids in a WeChat window of the sim must occur in the real
//! dump of the same screen, and every node must carry the real attribute names in the real order.

use std::collections::{BTreeSet, HashSet};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use tapwire_phone_sim::scenario::{Scenario, SeedChat, SeedMessage};
use tapwire_phone_sim::{AttrSet, Device, SimConfig, build_device};

const REAL_LIST: &str = include_str!("../../fixtures/real-dumps/list-8.0.x-2026-01-groups.xml");
const REAL_CHAT: &str = include_str!("../../fixtures/real-dumps/chat-8.0.x-2026-01-group.xml");
const WECHAT: &str = "com.tencent.mm";

/// Ids reported by public code but absent from the real files (their README says so):
/// a sim dump may end a path in one of these where the real one has none.
const REPORTED_ONLY: &[&str] = &[
    "com.tencent.mm:id/o_u",
    "com.tencent.mm:id/bql",
    "com.tencent.mm:id/obn",
];

#[derive(Default)]
struct Shape {
    /// Root-to-leaf id paths inside WeChat windows.
    paths: BTreeSet<Vec<String>>,
    /// (id path to the node, NAF present) for every WeChat node with an id.
    naf: HashSet<(Vec<String>, bool)>,
    attr_orders: BTreeSet<Vec<String>>,
    packages: Vec<String>,
    nodes: usize,
}

fn attrs(e: &BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.expect("well-formed attribute");
            let v = a.unescape_value().expect("valid escape").into_owned();
            (String::from_utf8_lossy(a.key.as_ref()).into_owned(), v)
        })
        .collect()
}

fn shape(xml: &str) -> Shape {
    let mut reader = Reader::from_str(xml);
    let mut s = Shape::default();
    // Per open node: (package, id path so far, has children)
    let mut stack: Vec<(String, Vec<String>, bool)> = Vec::new();
    let open = |s: &mut Shape, stack: &mut Vec<(String, Vec<String>, bool)>, e: &BytesStart<'_>| {
        let a = attrs(e);
        s.nodes += 1;
        s.attr_orders
            .insert(a.iter().map(|(k, _)| k.clone()).collect());
        let get = |k: &str| {
            a.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let pkg = get("package");
        if stack.is_empty() {
            s.packages.push(pkg.clone());
        }
        if let Some(parent) = stack.last_mut() {
            parent.2 = true;
        }
        let mut path = stack.last().map(|p| p.1.clone()).unwrap_or_default();
        let id = get("resource-id");
        if !id.is_empty() {
            path.push(id);
            if pkg == WECHAT {
                s.naf
                    .insert((path.clone(), a.iter().any(|(k, _)| k == "NAF")));
            }
        }
        stack.push((pkg, path, false));
    };
    let close = |s: &mut Shape, stack: &mut Vec<(String, Vec<String>, bool)>| {
        let (pkg, path, had_children) = stack.pop().expect("balanced");
        if !had_children && pkg == WECHAT && !path.is_empty() {
            s.paths.insert(path);
        }
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == b"node" => open(&mut s, &mut stack, &e),
            Event::Empty(e) if e.name().as_ref() == b"node" => {
                open(&mut s, &mut stack, &e);
                close(&mut s, &mut stack);
            }
            Event::End(e) if e.name().as_ref() == b"node" => close(&mut s, &mut stack),
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unbalanced nodes");
    s
}

fn msg(sender: Option<&str>, text: &str, minutes_ago: i64) -> SeedMessage {
    SeedMessage {
        sender: sender.map(str::to_string),
        text: text.into(),
        minutes_ago,
        own: sender.is_none(),
        system: false,
        kind: None,
    }
}

fn system(text: &str, minutes_ago: i64) -> SeedMessage {
    SeedMessage {
        sender: None,
        text: text.into(),
        minutes_ago,
        own: false,
        system: true,
        kind: None,
    }
}

/// Chats like the ones in the real list: muted groups with unread dots, some without.
fn real_like(extra_unmuted_unread: bool) -> Scenario {
    let mut chats = vec![
        SeedChat {
            name: "设计接单群2群".into(),
            group: true,
            muted: true,
            pinned: true,
            unread: 15,
            messages: vec![
                msg(
                    Some("A柚子设计"),
                    "找2分钟左右的ae动画成品   科普类叙事类历史类红色类  要网上没有的 有ae源文件的  现在要  到手200",
                    3 * 24 * 60,
                ),
                system(
                    "\"..刘雨欣（定金留档）\"邀请\"Tom\"加入了群聊",
                    3 * 24 * 60 - 4,
                ),
                system(
                    "\"Tom\"与群里其他人都不是朋友关系，请注意隐私安全",
                    3 * 24 * 60 - 4,
                ),
                msg(
                    Some("A柚子设计"),
                    "找2分钟左右的ae动画成品   科普类叙事类历史传统节日",
                    3 * 24 * 60 - 5,
                ),
                msg(Some("陈静"), "用抖音赚..加\n收代理", 2 * 24 * 60),
                msg(None, "收到", 2 * 24 * 60 - 1),
                msg(
                    Some("万事如意，大吉大利"),
                    "@杨帆\u{2005}，做什么的，我加入可以吗",
                    24 * 60,
                ),
            ],
        },
        SeedChat {
            name: "读书会".into(),
            group: true,
            muted: true,
            pinned: false,
            unread: 0,
            messages: vec![msg(Some("林海"), "好", 5 * 24 * 60)],
        },
        SeedChat {
            name: "线上摸鱼群".into(),
            group: true,
            muted: false,
            pinned: false,
            unread: 0,
            messages: vec![msg(Some("王芳"), "下班了", 6 * 24 * 60)],
        },
    ];
    for i in 0..12 {
        chats.push(SeedChat {
            name: format!("群{i}"),
            group: true,
            muted: i % 2 == 0,
            pinned: false,
            unread: 0,
            messages: vec![msg(Some("某人"), "你好", 8 * 24 * 60 + i)],
        });
    }
    if extra_unmuted_unread {
        chats.push(SeedChat {
            name: "张三".into(),
            group: false,
            muted: false,
            pinned: true,
            unread: 2,
            messages: vec![msg(Some("张三"), "在吗", 1)],
        });
    }
    Scenario { chats }
}

fn device(scenario: Scenario, attrs: AttrSet, title_text: bool) -> Device {
    build_device(&SimConfig {
        scenario,
        attrs,
        title_text,
        ..SimConfig::default()
    })
    .expect("device")
}

fn open_chat(d: &Device, name: &str) {
    d.with(|st| st.wechat.open_chat(name));
}

/// Compares a sim dump with a real one; `allowed` leaf ids may appear where the real has none.
fn check(sim_xml: &str, real_xml: &str, allowed: &[&str]) {
    assert!(sim_xml.starts_with(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<hierarchy rotation=\"0\">"
    ));
    let sim = shape(sim_xml);
    let real = shape(real_xml);
    assert_eq!(
        sim.packages.first().map(String::as_str),
        Some("com.android.systemui"),
        "status bar window first"
    );
    assert_eq!(
        sim.packages.last().map(String::as_str),
        Some("com.vivo.upslide"),
        "gesture bar window last"
    );
    assert!(sim.packages.iter().any(|p| p == WECHAT));

    let missing: Vec<_> = sim
        .paths
        .iter()
        .filter(|p| !real.paths.contains(*p))
        .filter(|p| {
            !(p.last().is_some_and(|l| allowed.contains(&l.as_str()))
                && real
                    .naf
                    .iter()
                    .any(|(rp, _)| rp.as_slice() == &p[..p.len() - 1]))
        })
        .map(|p| {
            p.iter()
                .map(|s| s.rsplit('/').next().unwrap_or(s))
                .collect::<Vec<_>>()
                .join(" > ")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "id paths not in the real dump:\n{}",
        missing.join("\n")
    );

    for order in &sim.attr_orders {
        assert!(
            real.attr_orders.contains(order),
            "attribute order not in the real dump: {order:?}"
        );
    }
    // NAF must sit where the real dump has it (for id paths both dumps share).
    for (path, naf) in &sim.naf {
        let real_flags: Vec<bool> = real
            .naf
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, f)| *f)
            .collect();
        if !real_flags.is_empty() {
            assert!(
                real_flags.contains(naf),
                "NAF={naf} on {:?} differs from the real dump",
                path.last()
            );
        }
    }
}

#[test]
fn list_matches_real_structure() {
    let d = device(real_like(false), AttrSet::Modern, false);
    let xml = d.dump_xml();
    check(&xml, REAL_LIST, &[]);
    // The list must show enough rows to reach the tab bar, like the real one.
    assert!(xml.matches(":id/kbq\"").count() >= 11);
    assert!(
        xml.contains("resource-id=\"com.tencent.mm:id/a_h\""),
        "muted unread chats show a dot"
    );
    assert!(
        xml.contains("[15条] A柚子设计: ") || xml.contains("[15条] 万事如意"),
        "muted preview carries [N条]"
    );
}

#[test]
fn group_chat_matches_real_structure() {
    let d = device(real_like(false), AttrSet::Modern, false);
    open_chat(&d, "设计接单群2群");
    let xml = d.dump_xml();
    check(&xml, REAL_CHAT, &[]);
    assert!(xml.contains("resource-id=\"com.tencent.mm:id/brc\""));
    assert!(xml.contains("text='\"Tom\"与群里其他人都不是朋友关系，请注意隐私安全'"));
    assert!(xml.contains("用抖音赚..加&#10;收代理"));
    assert!(xml.contains("更多功能按钮，已折叠") && !xml.contains(":id/bql"));
}

#[test]
fn reported_ids_only_extend_real_paths() {
    let d = device(real_like(true), AttrSet::Modern, true);
    let list = d.dump_xml();
    assert!(
        list.contains(":id/o_u"),
        "unmuted unread chats show a numeric badge"
    );
    check(&list, REAL_LIST, REPORTED_ONLY);
    open_chat(&d, "设计接单群2群");
    d.with(|st| st.wechat.set_draft("设计接单群2群", "draft"));
    let chat = d.dump_xml();
    assert!(chat.contains(":id/bql") && chat.contains(":id/obn"));
    check(&chat, REAL_CHAT, REPORTED_ONLY);
}

#[test]
fn stock_attribute_set() {
    let d = device(real_like(false), AttrSet::Stock, false);
    let xml = d.dump_xml();
    assert!(!xml.contains('\n'), "stock dumps are one line");
    let s = shape(&xml);
    let stock: Vec<String> = "index text resource-id class package content-desc checkable checked clickable enabled focusable focused scrollable long-clickable password selected bounds"
        .split(' ')
        .map(str::to_string)
        .collect();
    for order in &s.attr_orders {
        let without_naf: Vec<String> = order.iter().filter(|k| *k != "NAF").cloned().collect();
        assert_eq!(without_naf, stock);
        if order.len() != without_naf.len() {
            assert_eq!(order[0], "NAF", "NAF comes first");
        }
    }
}

#[test]
fn hidden_tree_from_8_0_55() {
    let d = build_device(&SimConfig {
        wechat_version: "8.0.55".into(),
        ..SimConfig::default()
    })
    .expect("device");
    let s = shape(&d.dump_xml());
    assert!(s.paths.is_empty(), "no WeChat ids in a hidden-tree dump");
    assert!(
        d.dump_xml().contains("package=\"com.tencent.mm\"")
            && d.dump_xml().contains("bounds=\"[0,0][0,0]\"")
    );
    // The app keeps working underneath: a tap on the first row still opens a chat.
    d.tap(360, 230);
    assert!(d.read(|st| st.wechat.open_chat_name().is_some()));
}
