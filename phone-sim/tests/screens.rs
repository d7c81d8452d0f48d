//! Screenshots checked by their pixels against the dump of the same screen: bubbles in their
//! colours at the bounds the dump gives, glyphs inside text nodes and never outside bubbles,
//! badges red, at each of the three resolutions, in both themes, with and without a font.
//! One PNG per screen goes to the target's temporary directory for a person to look at.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;
use tapwire_phone_sim::control::SimControl;
use tapwire_phone_sim::wechat::model::MsgKind;
use tapwire_phone_sim::wechat::render::render_screenshot;
use tapwire_phone_sim::wechat::ui::{BADGE_RED, CHAT_BACKGROUND, OWN_BUBBLE_GREEN, WHITE};
use tapwire_phone_sim::{Device, Scenario, Screen, SimConfig, Theme, build_device};

#[derive(Debug, Clone)]
struct DumpNode {
    id: String,
    class: String,
    text: String,
    bounds: [i32; 4],
    /// Short ids of the ancestors, outermost first.
    ancestors: Vec<String>,
}

fn short(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

fn parse(xml: &str) -> Vec<DumpNode> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(e @ (Event::Start(_) | Event::Empty(_))) => {
                let (Event::Start(b) | Event::Empty(b)) = &e else {
                    unreachable!()
                };
                if b.name().as_ref() != b"node" {
                    continue;
                }
                let mut attrs: HashMap<Vec<u8>, String> = HashMap::new();
                for a in b.attributes().flatten() {
                    let v = a.unescape_value().expect("escape").into_owned();
                    attrs.insert(a.key.as_ref().to_vec(), v);
                }
                let nums: Vec<i32> = attrs[&b"bounds".to_vec()]
                    .split(|c: char| !c.is_ascii_digit() && c != '-')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("number"))
                    .collect();
                let id = attrs[&b"resource-id".to_vec()].clone();
                out.push(DumpNode {
                    id: short(&id),
                    class: attrs[&b"class".to_vec()].clone(),
                    text: attrs[&b"text".to_vec()].clone(),
                    bounds: [nums[0], nums[1], nums[2], nums[3]],
                    ancestors: stack.clone(),
                });
                if matches!(e, Event::Start(_)) {
                    stack.push(short(&id));
                }
            }
            Ok(Event::End(b)) if b.name().as_ref() == b"node" => {
                stack.pop();
            }
            Ok(Event::Eof) => break,
            Err(e) => panic!("bad dump: {e}"),
            _ => {}
        }
    }
    out
}

struct Shot {
    img: image::RgbImage,
    scale: f32,
}

impl Shot {
    fn at(&self, x: i32, y: i32) -> u32 {
        let p = self.img.get_pixel(x as u32, y as u32).0;
        (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2])
    }

    fn px(&self, layout: f32) -> i32 {
        (layout * self.scale).round() as i32
    }

    /// Pixels inside `b` whose brightness differs from `bg`'s by more than `by`.
    fn ink(&self, b: [i32; 4], bg: u32, by: f32) -> usize {
        let mut n = 0;
        for y in b[1]..b[3] {
            for x in b[0]..b[2] {
                if (lum(self.at(x, y)) - lum(bg)).abs() > by {
                    n += 1;
                }
            }
        }
        n
    }

    /// Pixels of `b` that are not exactly `colour`.
    fn not(&self, b: [i32; 4], colour: u32) -> usize {
        let mut n = 0;
        for y in b[1]..b[3] {
            for x in b[0]..b[2] {
                if self.at(x, y) != colour {
                    n += 1;
                }
            }
        }
        n
    }
}

fn lum(c: u32) -> f32 {
    let (r, g, b) = ((c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF);
    0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32
}

fn png_shot(png: &[u8], screen: Screen) -> Shot {
    let img = image::load_from_memory(png).expect("PNG").to_rgb8();
    assert_eq!(
        (img.width() as i32, img.height() as i32),
        (screen.width, screen.height),
        "the picture is the screen's size"
    );
    Shot {
        img,
        scale: screen.scale(),
    }
}

fn save(name: &str, png: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("phone-sim-screens");
    std::fs::create_dir_all(&dir).expect("output dir");
    std::fs::write(dir.join(name), png).expect("write PNG");
}

fn phone(screen: Screen, theme: Theme) -> Device {
    let d = build_device(&SimConfig {
        scenario: Scenario::default(),
        screen,
        theme,
        ..SimConfig::default()
    })
    .expect("device");
    d.with(|st| {
        let ts = st.clock.now();
        let w = &mut st.wechat;
        w.configure_chat("项目群", true, false, false);
        w.incoming(
            "项目群",
            true,
            Some("王芳"),
            "周五之前把设计稿发我，谢谢！",
            MsgKind::Text,
            ts - 900,
        );
        w.incoming(
            "项目群",
            true,
            Some("Bob"),
            "OK, I'll send v2 by 18:30 😀",
            MsgKind::Text,
            ts - 880,
        );
        w.outgoing_by_owner("项目群", "收到👍", ts - 870);
        w.incoming(
            "项目群",
            true,
            None,
            "\"Bob\"撤回了一条消息",
            MsgKind::System,
            ts - 860,
        );
        w.incoming(
            "项目群",
            true,
            Some("李雷"),
            "A long line to wrap: 这是一条很长的消息，用来检查换行和字体，1234567890。",
            MsgKind::Text,
            ts,
        );
        w.outgoing_by_owner("项目群", "好的，马上看 (ok)", ts + 5);
        w.incoming("Alice", false, None, "hi", MsgKind::Text, ts);
        w.incoming("Alice", false, None, "在吗？", MsgKind::Text, ts);
    });
    d
}

/// The group chat: own bubbles green at the dump's bounds of own messages, others' white,
/// glyphs inside every text node, nothing of a bubble's text outside it.
fn check_chat(screen: Screen) {
    let d = phone(screen, Theme::Light);
    d.with(|st| st.wechat.open_chat("项目群"));
    let png = d.screencap_png().expect("png");
    save(&format!("chat-{screen}-light.png"), &png);
    let shot = png_shot(&png, screen);
    let dump = parse(&d.dump_xml());
    let others_left = screen.to_px(105);

    let bubbles: Vec<&DumpNode> = dump
        .iter()
        .filter(|n| n.id == "bkl" && n.ancestors.iter().any(|a| a == "bn1"))
        .collect();
    assert_eq!(bubbles.len(), 5, "{screen}: five text messages");
    let mut own = 0;
    for b in &bubbles {
        let [l, t, r, bottom] = b.bounds;
        let is_own = l != others_left;
        own += usize::from(is_own);
        let colour = if is_own { OWN_BUBBLE_GREEN } else { WHITE };
        let probe = ((l + r) / 2, t + shot.px(4.0));
        assert_eq!(
            shot.at(probe.0, probe.1),
            colour,
            "{screen}: bubble {:?} at {probe:?}",
            b.text
        );
        let glyphs = shot.ink(b.bounds, colour, 80.0);
        assert!(
            glyphs > 40,
            "{screen}: {:?} shows glyphs ({glyphs})",
            b.text
        );
        // The bubble's padding around the text holds no glyph: the text keeps to its area.
        let (pad_l, pad_r) = if is_own { (2.0, 30.0) } else { (12.0, 20.0) };
        let (v0, v1) = (t + shot.px(10.0), bottom - shot.px(10.0));
        for strip in [
            [l + shot.px(pad_l), v0, l + shot.px(pad_l + 18.0), v1],
            [r - shot.px(pad_r), v0, r - shot.px(pad_r - 18.0), v1],
        ] {
            assert_eq!(
                shot.not(strip, colour),
                0,
                "{screen}: padding of {:?} at {strip:?}",
                b.text
            );
        }
        // Beside the bubble (away from the avatar) and under it: only the chat's background.
        let gap = shot.px(6.0);
        let beside = if is_own {
            [l - gap, t, l, bottom]
        } else {
            [r, t, r + gap, bottom]
        };
        assert_eq!(
            shot.not(beside, CHAT_BACKGROUND),
            0,
            "{screen}: nothing beside {:?}",
            b.text
        );
        let under = [l, bottom, r, bottom + shot.px(4.0)];
        assert_eq!(
            shot.not(under, CHAT_BACKGROUND),
            0,
            "{screen}: nothing under {:?}",
            b.text
        );
    }
    assert_eq!(own, 2, "{screen}: two own messages");

    // Sender names, time dividers and the system line: grey glyphs on the background.
    for id in ["brc", "br1"] {
        let nodes: Vec<_> = dump.iter().filter(|n| n.id == id).collect();
        assert!(!nodes.is_empty(), "{screen}: {id} in the dump");
        for n in nodes {
            assert!(
                shot.ink(n.bounds, CHAT_BACKGROUND, 40.0) > 20,
                "{screen}: glyphs of {id} {:?}",
                n.text
            );
        }
    }
    let system = dump
        .iter()
        .find(|n| n.id == "bkl" && n.text.contains("撤回"))
        .expect("system line");
    assert!(shot.ink(system.bounds, CHAT_BACKGROUND, 40.0) > 20);

    // The title bar shows the chat's name, which the 8.0.x dump leaves out.
    let title = dump.iter().find(|n| n.id == "obq").expect("title bar");
    assert!(title.text.is_empty());
    assert!(
        shot.ink(title.bounds, CHAT_BACKGROUND, 80.0) > 40,
        "{screen}: the name in the title bar"
    );

    // The back button's count of other chats' unread messages: a red badge.
    let back = dump.iter().find(|n| n.id == "osp").expect("back badge");
    check_badge(&shot, back, screen);
}

fn check_badge(shot: &Shot, n: &DumpNode, screen: Screen) {
    let [l, t, _, b] = n.bounds;
    let cy = (t + b) / 2;
    assert_eq!(
        shot.at(l + shot.px(3.0), cy),
        BADGE_RED,
        "{screen}: badge {} {:?} is red",
        n.id,
        n.bounds
    );
    let white = shot.ink(n.bounds, BADGE_RED, 60.0);
    assert!(white > 5, "{screen}: the badge's number is drawn ({white})");
}

#[test]
fn chat_720() {
    check_chat(Screen::HD);
}

#[test]
fn chat_1080() {
    check_chat(Screen::FHD);
}

#[test]
fn chat_1440() {
    check_chat(Screen::QHD);
}

#[test]
fn list_badges_and_dots_are_red_at_their_bounds() {
    for screen in [Screen::HD, Screen::QHD] {
        let d = phone(screen, Theme::Light);
        d.with(|st| {
            st.wechat.configure_chat("静音群", true, true, false);
            let ts = st.clock.now();
            st.wechat
                .incoming("静音群", true, Some("Eve"), "x", MsgKind::Text, ts);
        });
        let png = d.screencap_png().expect("png");
        save(&format!("list-{screen}-light.png"), &png);
        let shot = png_shot(&png, screen);
        let dump = parse(&d.dump_xml());
        let badges: Vec<_> = dump
            .iter()
            .filter(|n| n.id == "o_u" || n.id == "osw")
            .collect();
        assert_eq!(badges.len(), 2, "Alice's row and the tab");
        for b in badges {
            check_badge(&shot, b, screen);
        }
        let dot = dump.iter().find(|n| n.id == "a_h").expect("muted dot");
        let [l, t, r, b] = dot.bounds;
        assert_eq!(shot.at((l + r) / 2, (t + b) / 2), BADGE_RED);
        // Row titles and previews carry glyphs.
        for n in dump.iter().filter(|n| n.id == "kbq" || n.id == "ht5") {
            assert!(
                shot.ink(n.bounds, WHITE, 40.0) > 20,
                "{screen}: glyphs of {:?}",
                n.text
            );
        }
    }
}

#[test]
fn the_dark_theme_flips_the_background() {
    let d = phone(Screen::FHD, Theme::Dark);
    d.with(|st| st.wechat.open_chat("项目群"));
    let png = d.screencap_png().expect("png");
    save("chat-1080x2400-dark.png", &png);
    let shot = png_shot(&png, Screen::FHD);
    let dump = parse(&d.dump_xml());
    let others_left = Screen::FHD.to_px(105);
    for b in dump
        .iter()
        .filter(|n| n.id == "bkl" && n.ancestors.iter().any(|a| a == "bn1"))
    {
        let [l, t, r, bottom] = b.bounds;
        let own = l != others_left;
        let probe = shot.at((l + r) / 2, t + shot.px(4.0));
        assert_eq!(probe, if own { 0x3EB575 } else { 0x2C2C2C }, "{:?}", b.text);
        let beside = if own { l - 4 } else { r + 4 };
        assert_eq!(
            shot.at(beside, (t + bottom) / 2),
            0x111111,
            "dark background"
        );
        assert!(shot.ink(b.bounds, 0x2C2C2C, 60.0) > 40, "light glyphs");
    }
    // Dumps carry no colours: the same tree in either theme.
    let light = phone(Screen::FHD, Theme::Light);
    light.with(|st| st.wechat.open_chat("项目群"));
    let mask = |x: String| x.replace(|c: char| c.is_ascii_digit(), "");
    assert_eq!(mask(light.dump_xml()), mask(d.dump_xml()));
}

#[test]
fn without_a_font_text_is_drawn_as_bars() {
    let screen = Screen::HD;
    let d = phone(screen, Theme::Light);
    d.with(|st| st.wechat.open_chat("项目群"));
    let shot = render_screenshot(&d.windows(), screen, Theme::Light, None);
    let img = image::RgbImage::from_raw(shot.width, shot.height, shot.rgb.clone()).expect("rgb");
    let shot = Shot { img, scale: 1.0 };
    let dump = parse(&d.dump_xml());
    for b in dump
        .iter()
        .filter(|n| n.id == "bkl" && n.ancestors.iter().any(|a| a == "bn1"))
    {
        // A bar is solid text colour where the first line's glyphs would be.
        let [l, t, _, _] = b.bounds;
        let own = l != 105;
        let x = l + if own { 23 } else { 33 } + 4;
        assert_eq!(shot.at(x, t + 14 + 20), 0x191919, "a bar in {:?}", b.text);
    }
}

#[test]
fn pictures_stickers_and_red_packets() {
    let screen = Screen::FHD;
    let d = build_device(&SimConfig {
        scenario: Scenario::default(),
        screen,
        ..SimConfig::default()
    })
    .expect("device");
    let control = SimControl::new(d.clone());
    let from = |text: &str| tapwire_phone_sim::IncomingMessage {
        chat: "Alice".into(),
        group: false,
        sender: None,
        text: text.into(),
        system: false,
    };
    control.incoming_kind(&from(""), MsgKind::Image);
    control.incoming_kind(&from(""), MsgKind::Sticker);
    control.incoming_kind(&from(""), MsgKind::RedPacket);
    let list = control.screen();
    assert_eq!(list.rows[0].preview, "[微信红包]恭喜发财，大吉大利");
    d.with(|st| st.wechat.open_chat("Alice"));
    let kinds: Vec<(String, String)> = control
        .screen()
        .messages
        .into_iter()
        .filter(|m| m.kind != "divider")
        .map(|m| (m.kind, m.text))
        .collect();
    assert_eq!(
        kinds,
        [
            ("image".to_string(), String::new()),
            ("sticker".to_string(), String::new()),
            ("red_packet".to_string(), "恭喜发财，大吉大利".to_string())
        ]
    );
    let png = d.screencap_png().expect("png");
    save("kinds-1080x2400-light.png", &png);
    let shot = png_shot(&png, screen);
    let dump = parse(&d.dump_xml());
    // A picture is the media frame around an ImageView without text, as on real phones.
    let media: Vec<_> = dump.iter().filter(|n| n.id == "bkg").collect();
    assert_eq!(media.len(), 2);
    for m in &media {
        assert!(m.text.is_empty());
        let image = dump
            .iter()
            .find(|n| n.bounds == m.bounds && n.class == "android.widget.ImageView")
            .expect("an ImageView inside");
        assert!(image.text.is_empty());
        let [l, t, r, b] = m.bounds;
        assert_ne!(
            shot.at((l + r) / 2, (t + b) / 2),
            CHAT_BACKGROUND,
            "something is drawn"
        );
    }
    assert!(!dump.iter().any(|n| n.id == "bkl"), "no text bubble");
    let label = dump
        .iter()
        .find(|n| n.text == "微信红包")
        .expect("the card's label");
    let card = dump
        .iter()
        .rfind(|n| {
            n.bounds[0] <= label.bounds[0]
                && n.bounds[2] >= label.bounds[2]
                && n.bounds[1] < label.bounds[1]
                && n.class == "android.widget.LinearLayout"
        })
        .expect("the card");
    let [l, t, _, _] = card.bounds;
    assert_eq!(
        shot.at(l + shot.px(40.0), t + shot.px(10.0)),
        0xFA9D3B,
        "the card is WeChat's orange"
    );
    let greeting = dump
        .iter()
        .find(|n| n.text == "恭喜发财，大吉大利")
        .expect("greeting");
    assert!(
        shot.ink(greeting.bounds, 0xFA9D3B, 40.0) > 40,
        "white glyphs"
    );
}

#[test]
fn raw_screencap_follows_android_and_matches_the_png() {
    let screen = Screen::QHD;
    let d = phone(screen, Theme::Light);
    let raw = d.screencap_raw();
    let word = |i: usize| u32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    assert_eq!([word(0), word(1), word(2), word(3)], [1440, 3200, 1, 1]);
    assert_eq!(raw.len(), 16 + 1440 * 3200 * 4);
    let shot = png_shot(&d.screencap_png().expect("png"), screen);
    for (x, y) in [(10, 10), (700, 1600), (1439, 3199)] {
        let i = 16 + (y * 1440 + x) * 4;
        let c = (u32::from(raw[i]) << 16) | (u32::from(raw[i + 1]) << 8) | u32::from(raw[i + 2]);
        assert_eq!(c, shot.at(x as i32, y as i32));
        assert_eq!(raw[i + 3], 0xFF, "opaque");
    }
    // Drawn once: the same screen gives the same picture without drawing it again.
    assert!(std::sync::Arc::ptr_eq(&d.screenshot(), &d.screenshot()));
}
