//! The vision reader on screens that are not phone-sim's exact pixels: another width
//! (480 px, scaled), the older bubble green, another vendor's status and navigation bars;
//! the conversation list against the tree reader; and the reader taking raw screenshots
//! through a transport, retrying a screenshot cut short.

use std::collections::VecDeque;
use std::path::PathBuf;

use image::{Rgb, RgbImage};
use tapwire_device_agent::ocr::{self, OcrEngine};
use tapwire_device_agent::reader::vision::{self, Capture, VisionReader};
use tapwire_device_agent::reader::{ReadError, ScreenReader};
use tapwire_device_agent::screen::{ChatItem, ScreenReading, Side, Unread};
use tapwire_device_agent::transport::{ShellOutput, Transport, TransportError};
use tapwire_device_agent::{Dump, ScreenKind, UiMaps, read_screen};
use tapwire_phone_sim::wechat::model::MsgKind;
use tapwire_phone_sim::{Device, Scenario, Screen, SimConfig, Theme, build_device};

fn engine() -> Box<dyn OcrEngine> {
    ocr::default_engine().expect("PP-OCR or tesseract (scripts/setup installs both)")
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
            "OK, I'll send v2 by 18:30",
            MsgKind::Text,
            ts - 880,
        );
        w.outgoing_by_owner("项目群", "收到，马上改", ts - 870);
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
            "这是一条很长的消息，用来检查换行和字体，1234567890。",
            MsgKind::Text,
            ts,
        );
        w.outgoing_by_owner("项目群", "好的，马上看", ts + 5);
        w.configure_chat("静音群", true, true, false);
        w.incoming("静音群", true, Some("Eve"), "明天见", MsgKind::Text, ts);
        w.incoming("Alice", false, None, "在吗？", MsgKind::Text, ts);
        w.incoming("Alice", false, None, "hi", MsgKind::Text, ts);
    });
    d
}

fn truth(d: &Device) -> ScreenReading {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let maps = UiMaps::load_dir(&root.join("ui-maps")).expect("maps");
    let map = maps.by_name("wechat-8.0").expect("8.0 map");
    read_screen(&Dump::parse(&d.dump_xml()).expect("dump"), map)
}

fn shot(d: &Device) -> RgbImage {
    image::load_from_memory(&d.screencap_png().expect("png"))
        .expect("decode")
        .to_rgb8()
}

fn fold(s: Option<&str>) -> String {
    s.unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// The messages of `read` match the tree's: same count, sides and senders in order, and
/// texts within `max_edits` edits each.
fn same_messages(read: &ScreenReading, truth: &ScreenReading, max_edits: usize) {
    assert_eq!(read.kind, ScreenKind::Chat, "{read:?}");
    let seen: Vec<&ChatItem> = read
        .chat
        .as_ref()
        .expect("chat")
        .messages
        .iter()
        .filter(|m| m.is_message())
        .collect();
    let want: Vec<&ChatItem> = truth
        .chat
        .as_ref()
        .expect("chat")
        .messages
        .iter()
        .filter(|m| m.is_message())
        .collect();
    assert_eq!(seen.len(), want.len(), "messages: {seen:#?}");
    for (s, w) in seen.iter().zip(&want) {
        assert_eq!(s.side, w.side, "side of {:?}", w.text);
        assert_eq!(
            fold(s.sender.as_deref()),
            fold(w.sender.as_deref()),
            "sender of {:?}",
            w.text
        );
        let d = strsim::levenshtein(&fold(s.text.as_deref()), &fold(w.text.as_deref()));
        assert!(d <= max_edits, "{:?} read as {:?}", w.text, s.text);
    }
}

#[test]
fn a_480_wide_screen_reads_like_the_720_one() {
    let d = phone(Screen::HD, Theme::Light);
    d.with(|st| st.wechat.open_chat("项目群"));
    let img = shot(&d);
    let small = image::imageops::resize(&img, 480, 1072, image::imageops::FilterType::Triangle);
    let read = vision::read_image(&small, engine().as_mut()).expect("read");
    let chat = read.reading.chat.as_ref().expect("chat");
    // Bounds in the small picture's pixels: the first message's bubble starts right of the
    // avatar column (52.5 dp = 70 px at 480 wide).
    let first = chat
        .messages
        .iter()
        .find(|m| m.is_message())
        .expect("a message");
    assert!((65..=80).contains(&first.bounds.left), "{:?}", first.bounds);
    same_messages(&read.reading, &truth(&d), 3);
}

#[test]
fn the_older_green_and_the_dark_theme_are_own_bubbles() {
    let d = phone(Screen::FHD, Theme::Light);
    d.with(|st| st.wechat.open_chat("项目群"));
    let mut img = shot(&d);
    for p in img.pixels_mut() {
        if p.0 == [0x95, 0xEC, 0x69] {
            *p = Rgb([0xA0, 0xE7, 0x5A]);
        }
    }
    let read = vision::read_image(&img, engine().as_mut()).expect("read");
    same_messages(&read.reading, &truth(&d), 1);
    let own = read
        .reading
        .chat
        .as_ref()
        .expect("chat")
        .messages
        .iter()
        .filter(|m| m.side == Side::Right)
        .count();
    assert_eq!(own, 2);

    let dark = phone(Screen::FHD, Theme::Dark);
    dark.with(|st| st.wechat.open_chat("项目群"));
    let read = vision::read_image(&shot(&dark), engine().as_mut()).expect("read");
    same_messages(&read.reading, &truth(&dark), 1);
}

#[test]
fn another_vendors_bars_do_not_change_the_reading() {
    let d = phone(Screen::QHD, Theme::Light);
    d.with(|st| st.wechat.open_chat("项目群"));
    let img = shot(&d);
    let (w, h) = img.dimensions();
    // A black status bar with white icons, and a black three-button navigation bar of
    // 48 dp added under the app (the app keeps its height: the picture grows).
    let nav = 48 * w / 360;
    let mut out = RgbImage::from_pixel(w, h + nav, Rgb([0, 0, 0]));
    image::imageops::replace(&mut out, &img, 0, 0);
    let status = 38 * w / 360;
    for y in 0..status {
        for x in 0..w {
            let light = (y > status / 3 && y < status * 2 / 3)
                && (x % 97 < 30 && (x > w / 20 && x < w / 5 || x > w * 4 / 5 && x < w * 19 / 20));
            out.put_pixel(
                x,
                y,
                if light {
                    Rgb([240, 240, 240])
                } else {
                    Rgb([0, 0, 0])
                },
            );
        }
    }
    for (i, cx) in [w / 4, w / 2, w * 3 / 4].into_iter().enumerate() {
        let r = nav / 5;
        for y in h + nav / 2 - r..h + nav / 2 + r {
            for x in cx - r..cx + r {
                if i != 1 || (x + r - cx) % 6 < 3 {
                    out.put_pixel(x, y, Rgb([200, 200, 200]));
                }
            }
        }
    }
    let read = vision::read_image(&out, engine().as_mut()).expect("read");
    same_messages(&read.reading, &truth(&d), 1);
    assert_eq!(
        read.reading
            .chat
            .as_ref()
            .and_then(|c| c.title.clone())
            .as_deref(),
        Some("项目群")
    );
}

#[test]
fn the_conversation_list_reads_like_the_tree() {
    for theme in [Theme::Light, Theme::Dark] {
        let d = phone(Screen::FHD, theme);
        let read = vision::read_image(&shot(&d), engine().as_mut()).expect("read");
        let want = truth(&d);
        assert_eq!(read.reading.kind, ScreenKind::ConversationList, "{theme:?}");
        let (seen, want) = (read.reading.list.expect("list"), want.list.expect("list"));
        assert_eq!(seen.tab_unread, want.tab_unread, "{theme:?}");
        assert_eq!(
            seen.rows.len(),
            want.rows.len(),
            "{theme:?}: {:#?}",
            seen.rows
        );
        for (s, w) in seen.rows.iter().zip(&want.rows) {
            assert_eq!(
                fold(s.title.as_deref()),
                fold(w.title.as_deref()),
                "{theme:?}"
            );
            assert_eq!(
                fold(s.time.as_deref()),
                fold(w.time.as_deref()),
                "{theme:?}"
            );
            assert_eq!(s.unread, w.unread, "{theme:?} {:?}", w.title);
            assert_eq!(s.muted, w.muted, "{theme:?} {:?}", w.title);
            let d = strsim::levenshtein(&fold(s.preview.as_deref()), &fold(w.preview.as_deref()));
            assert!(
                d <= 1,
                "{theme:?}: preview {:?} read as {:?}",
                w.preview,
                s.preview
            );
            // The row's bounds hold the tree's row (taps land inside it).
            let c = w.bounds.center();
            assert!(
                s.bounds.top <= c.1 && c.1 <= s.bounds.bottom,
                "{:?} vs {:?}",
                s.bounds,
                w.bounds
            );
        }
        assert!(seen.rows.iter().any(|r| r.unread == Unread::Dot));
    }
}

/// A phone that answers each shell call with the next canned output.
struct Replies {
    outputs: VecDeque<Vec<u8>>,
    commands: Vec<String>,
}

impl Transport for Replies {
    fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
        self.commands.push(command.to_string());
        Ok(ShellOutput {
            stdout: self.outputs.pop_front().expect("scripted"),
            stderr: Vec::new(),
            exit_code: Some(0),
        })
    }
    fn describe(&self) -> String {
        "scripted phone".into()
    }
}

#[test]
fn the_reader_takes_raw_screenshots_and_retries_one_cut_short() {
    let d = phone(Screen::HD, Theme::Light);
    d.with(|st| st.wechat.open_chat("项目群"));
    let raw = d.screencap_raw();
    let mut phone = Replies {
        outputs: VecDeque::from([raw[..raw.len() / 2].to_vec(), raw.clone()]),
        commands: Vec::new(),
    };
    let engine = engine();
    let expected_name = format!("vision:{}", engine.name());
    let mut reader = VisionReader::new("phone-1", engine, Capture::Raw);
    let reading = reader.read(&mut phone).expect("read after one retry");
    assert_eq!(phone.commands, ["screencap", "screencap"]);
    assert_eq!(reader.name(), expected_name);
    same_messages(&reading, &truth(&d), 1);
    assert!(reader.last_timings().is_some());

    let mut broken = Replies {
        outputs: VecDeque::from([b"no".to_vec(), b"no".to_vec(), b"no".to_vec()]),
        commands: Vec::new(),
    };
    match reader.read(&mut broken) {
        Err(ReadError::Screenshot { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected a screenshot error, got {other:?}"),
    }
}

/// Every badge count a list can show is read exactly, at each resolution and theme: a
/// count read short makes the first read of a never-opened chat take too few messages as
/// news, and the rest are never answered.
#[test]
fn badge_counts_are_read_exactly() {
    let counts: [u32; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 17, 27, 48, 99];
    let mut misread = Vec::new();
    for screen in [Screen::HD, Screen::FHD, Screen::QHD] {
        for theme in [Theme::Light, Theme::Dark] {
            for chunk in counts.chunks(7) {
                let d = build_device(&SimConfig {
                    scenario: Scenario::default(),
                    screen,
                    theme,
                    ..SimConfig::default()
                })
                .expect("device");
                d.with(|st| {
                    let ts = st.clock.now();
                    for (i, &count) in chunk.iter().enumerate() {
                        let chat = format!("客户{count}");
                        for n in 0..count {
                            let at = ts - 1_000 + i as i64 * 10;
                            st.wechat.incoming(
                                &chat,
                                false,
                                None,
                                &format!("消息{n}"),
                                MsgKind::Text,
                                at,
                            );
                        }
                    }
                });
                let want = truth(&d).list.expect("list");
                let seen = vision::read_image(&shot(&d), engine().as_mut())
                    .expect("read")
                    .reading
                    .list
                    .expect("list");
                for w in &want.rows {
                    let s = seen
                        .rows
                        .iter()
                        .find(|s| fold(s.title.as_deref()) == fold(w.title.as_deref()));
                    let s = s.map(|s| s.unread.clone());
                    if s.as_ref() != Some(&w.unread) {
                        misread.push(format!(
                            "{}x{} {theme:?} {:?}: {:?} read as {s:?}",
                            screen.width, screen.height, w.title, w.unread
                        ));
                    }
                }
            }
        }
    }
    assert!(misread.is_empty(), "{misread:#?}");
}

/// A count badge whose digits cannot be read (smudged here: the white digits painted over
/// with the badge's red) is a badge of unknown count, never a dot: a dot tells the actor
/// "one message", and a first read would then lose the rest. A real dot stays a dot.
#[test]
fn a_badge_whose_digits_cannot_be_read_is_uncounted_not_a_dot() {
    let d = phone(Screen::FHD, Theme::Light);
    let want = truth(&d).list.expect("list");
    let alice = want
        .rows
        .iter()
        .find(|r| r.title.as_deref() == Some("Alice"))
        .expect("Alice's row");
    assert_eq!(alice.unread, Unread::Count(2));
    let mut img = shot(&d);
    let red = |p: &Rgb<u8>| {
        p.0.iter()
            .zip([0xFA, 0x51, 0x51])
            .all(|(a, b)| a.abs_diff(b) <= 30)
    };
    let (b, w) = (alice.bounds, img.width() as i32);
    let mut smudged = 0;
    for y in b.top.max(0)..b.bottom {
        let xs: Vec<i32> = (0..w / 3)
            .filter(|&x| red(img.get_pixel(x as u32, y as u32)))
            .collect();
        if let (Some(&x0), Some(&x1)) = (xs.first(), xs.last()) {
            for x in x0..=x1 {
                img.put_pixel(x as u32, y as u32, Rgb([0xFA, 0x51, 0x51]));
                smudged += 1;
            }
        }
    }
    assert!(smudged > 100, "Alice's badge was found and painted over");
    let seen = vision::read_image(&img, engine().as_mut())
        .expect("read")
        .reading
        .list
        .expect("list");
    let unread = |title: &str| {
        seen.rows
            .iter()
            .find(|r| r.title.as_deref() == Some(title))
            .map(|r| r.unread.clone())
    };
    assert_eq!(unread("Alice"), Some(Unread::Uncounted), "{seen:#?}");
    assert_eq!(unread("静音群"), Some(Unread::Dot), "{seen:#?}");
}
