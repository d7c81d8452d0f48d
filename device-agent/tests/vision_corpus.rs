//! The vision reader's accuracy on a corpus of phone-sim screens: chats in Chinese, English,
//! digits, punctuation, emoji, mixed text, long wrapped lines, groups with several senders,
//! pictures, stickers and red packets, at 720×1608, 1080×2400 and 1440×3200, light and dark.
//!
//! The truth is the same screen read the other way: the sim's UI dump through the tree
//! reader. Every message the tree reader sees whole (not cut by the list's edge) must be
//! found by the vision reader at the same place, on the same side, from the same sender,
//! with its text.
//!
//! Measures, printed per engine, resolution and theme:
//! - characters: 1 − (edit distance / length), summed over messages, after NFKC and with all
//!   whitespace removed (CJK text has none, tesseract puts spaces between CJK glyphs, and a
//!   line break may or may not have been a space); a message the reader missed counts its
//!   whole length. **Emoji** are removed from the truth before comparing: the sim draws
//!   them as coloured squares (no colour-emoji font can be drawn here), the reader blanks
//!   them before OCR and counts them instead; the emoji count is reported beside.
//! - sides: every whole message on the right side;
//! - senders: every group member's message attributed to its sender: the name read is
//!   closest (edit distance) to the true sender among the names on that screen; exact name
//!   reads are reported beside. Messages without a name line must get none.
//!
//! Fails below 98 % characters, below 100 % sides or senders, or on a message read where the
//! tree reader has none (a cut bubble not left out).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tapwire_device_agent::ocr::{self, OcrEngine};
use tapwire_device_agent::reader::vision;
use tapwire_device_agent::screen::{ChatItem, ItemKind};
use tapwire_device_agent::{Dump, Rect, UiMaps, read_screen};
use tapwire_phone_sim::wechat::model::MsgKind;
use tapwire_phone_sim::{Device, Scenario, Screen, SimConfig, Theme, build_device};
use unicode_normalization::UnicodeNormalization;

const CHINESE: &[&str] = &[
    "周五之前把设计稿发我，谢谢！",
    "明天上午十点开会，别迟到。",
    "收到，我马上处理",
    "这个方案我觉得还可以再改改",
    "晚上一起吃饭吗？",
    "已经发到你邮箱了",
    "好的没问题",
    "辛苦了",
    "我在路上，大概二十分钟到",
    "请把合同再确认一遍",
    "今天的天气真不错",
    "谁有空帮忙看一下这个问题",
    "价格已经谈好了",
    "周末去爬山吧",
    "会议纪要已上传到群文件",
    "孩子明天放假，我请半天假",
];
const ENGLISH: &[&str] = &[
    "OK, I'll send v2 by tonight",
    "See you at the station",
    "Can you review the PR?",
    "Thanks a lot!",
    "Meeting moved to Friday",
    "Sounds good to me",
    "Where are the slides?",
    "Let me check and get back to you",
    "Happy birthday Amy",
    "The build is green again",
];
const DIGITS: &[&str] = &[
    "13800138000",
    "2026-01-15",
    "1,280.50",
    "3.1415926",
    "订单号 20260115083012",
    "10:30",
    "第3期 共12期",
    "库存 4096 件",
    "Room 1207",
    "+86 21 6234 5678",
];
const PUNCTUATION: &[&str] = &[
    "真的吗？！",
    "好吧……",
    "「重要」请看第二段",
    "（备注：下午交）",
    "A/B 测试 - 结论：可行",
    "价格：99元；数量：3",
    "《三体》看完了吗？",
    "50% off!!",
    "a@b.com #tag",
    "“引号”里的字",
];
const EMOJI: &[&str] = &[
    "好的👍",
    "哈哈😂😂",
    "生日快乐🎂🎉",
    "晚安🌙",
    "Great job 💪",
    "加油🔥🔥",
    "谢谢🙏",
    "👌 没问题",
];
const MIXED: &[&str] = &[
    "明天 9:30 在 Room 1207 开 weekly sync",
    "iPhone 15 Pro 到货了，价格 7999 元",
    "请用 Chrome 打开 example.com 看看",
    "PPT 第 12 页的数据要更新到 Q3",
    "OK 我五分钟后到",
    "张总说 deadline 是 3 月 1 号",
];
const LONG: &[&str] = &[
    "会议纪要：第一，项目进度整体正常，前端已经完成百分之八十；第二，后端接口下周三联调；第三，测试环境这周五前准备好。",
    "Please remember to bring your laptop charger tomorrow, the meeting room on the 12th floor has no spare ones left.",
    "我刚看了一下报价单，运费那一栏好像算错了，按 3.5 元每公斤应该是 1750 元，不是 1570 元，麻烦再核对一下。",
    "周六的活动改到室内了，地点是图书馆二楼报告厅，下午两点开始，记得带上身份证和报名表，谢谢大家配合！",
    "The new release fixes the login bug on Android 14, adds dark mode to the settings page and makes sync 2x faster.",
];
const SENDERS: &[&str] = &[
    "王芳",
    "Bob",
    "李雷",
    "Amy Chen",
    "张伟",
    "小红",
    "Kevin",
    "陈静怡",
];

/// A text that is a whole category's worth of the corpus, in turn.
fn pick(rng: &mut fastrand::Rng, pools: &[&[&'static str]]) -> &'static str {
    let pool = pools[rng.usize(..pools.len())];
    pool[rng.usize(..pool.len())]
}

/// The chats of one phone: each opened in turn for one screen.
fn fill(device: &Device, rng: &mut fastrand::Rng) -> Vec<String> {
    let all: &[&[&str]] = &[CHINESE, ENGLISH, DIGITS, PUNCTUATION, EMOJI, MIXED, LONG];
    let plans: &[(&str, bool, &[&[&str]])] = &[
        ("项目群", true, all),
        ("Alice", false, all),
        ("家人群", true, &[LONG, EMOJI, CHINESE]),
        ("客户A", false, &[DIGITS, PUNCTUATION, MIXED]),
        ("读书会", true, &[ENGLISH, PUNCTUATION, MIXED, CHINESE]),
        ("媒体", true, &[CHINESE, EMOJI]),
        ("Weekly", true, &[ENGLISH, DIGITS, MIXED]),
    ];
    device.with(|st| {
        let mut ts = st.clock.now() - 86_400;
        for (name, group, pools) in plans {
            st.wechat.configure_chat(name, *group, false, false);
            let members: Vec<&str> = if *group {
                let mut m = SENDERS.to_vec();
                rng.shuffle(&mut m);
                m.truncate(3 + rng.usize(..2));
                m
            } else {
                vec![name]
            };
            for i in 0..14 {
                ts += if rng.u8(..6) == 0 { 900 } else { 40 };
                let text = pick(rng, pools);
                if *name == "媒体" && i % 4 == 1 {
                    let kind = [MsgKind::Image, MsgKind::Sticker, MsgKind::RedPacket][i / 4 % 3];
                    let sender = members[rng.usize(..members.len())];
                    st.wechat.incoming(name, *group, Some(sender), "", kind, ts);
                } else if *group && i == 6 {
                    let who = members[0];
                    let line = format!("{who}邀请{}加入了群聊", members[1]);
                    st.wechat
                        .incoming(name, *group, None, &line, MsgKind::System, ts);
                } else if rng.u8(..3) == 0 {
                    st.wechat.outgoing_by_owner(name, text, ts);
                } else {
                    let sender = members[rng.usize(..members.len())];
                    st.wechat
                        .incoming(name, *group, Some(sender), text, MsgKind::Text, ts);
                }
            }
        }
        plans.iter().map(|p| p.0.to_string()).collect()
    })
}

fn is_emoji(c: char) -> bool {
    ('\u{1F000}'..='\u{1FAFF}').contains(&c)
        || ('\u{2600}'..='\u{27BF}').contains(&c)
        || matches!(c, '\u{FE0F}' | '\u{200D}' | '\u{20E3}')
}

/// NFKC, without whitespace (and without emoji, for the truth).
fn fold(s: &str) -> Vec<char> {
    s.nfkc()
        .filter(|c| !c.is_whitespace() && !is_emoji(*c))
        .collect()
}

fn distance(a: &[char], b: &[char]) -> usize {
    let a: String = a.iter().collect();
    let b: String = b.iter().collect();
    strsim::levenshtein(&a, &b)
}

#[derive(Default, Clone)]
struct Tally {
    screens: usize,
    messages: usize,
    chars: usize,
    errors: usize,
    sides_ok: usize,
    senders: usize,
    senders_ok: usize,
    senders_exact: usize,
    kinds_ok: usize,
    extra: usize,
    missed: usize,
    emoji_truth: usize,
    emoji_seen: usize,
    centre: usize,
    centre_ok: usize,
    ocr: Duration,
    segment: Duration,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.screens += o.screens;
        self.messages += o.messages;
        self.chars += o.chars;
        self.errors += o.errors;
        self.sides_ok += o.sides_ok;
        self.senders += o.senders;
        self.senders_ok += o.senders_ok;
        self.senders_exact += o.senders_exact;
        self.kinds_ok += o.kinds_ok;
        self.extra += o.extra;
        self.missed += o.missed;
        self.emoji_truth += o.emoji_truth;
        self.emoji_seen += o.emoji_seen;
        self.centre += o.centre;
        self.centre_ok += o.centre_ok;
        self.ocr += o.ocr;
        self.segment += o.segment;
    }
    fn char_accuracy(&self) -> f64 {
        1.0 - self.errors as f64 / self.chars.max(1) as f64
    }
    fn line(&self, label: &str) -> String {
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        format!(
            "{label:<22} screens {:>3}  messages {:>4}  chars {:>6.2}% ({} errors / {})  sides {:>6.2}%  senders {:>6.2}% (exact {:>6.2}%, n={})  kinds {:>6.2}%  missed {}  extra {}  emoji {}/{}  dividers+system {}/{}  segment {:.0} ms/screen  OCR {:.0} ms/screen",
            self.screens,
            self.messages,
            100.0 * self.char_accuracy(),
            self.errors,
            self.chars,
            pct(self.sides_ok, self.messages),
            pct(self.senders_ok, self.senders),
            pct(self.senders_exact, self.senders),
            self.senders,
            pct(self.kinds_ok, self.messages),
            self.missed,
            self.extra,
            self.emoji_seen,
            self.emoji_truth,
            self.centre_ok,
            self.centre,
            self.segment.as_secs_f64() * 1000.0 / self.screens.max(1) as f64,
            self.ocr.as_secs_f64() * 1000.0 / self.screens.max(1) as f64,
        )
    }
}

fn overlap(a: &Rect, b: &Rect) -> i32 {
    a.bottom.min(b.bottom) - a.top.max(b.top)
}

/// Compares one screen read both ways.
fn score(
    truth: &[ChatItem],
    list: Rect,
    width: i32,
    seen: &[ChatItem],
    emoji: &[usize],
    failures: &mut Vec<String>,
    label: &str,
) -> Tally {
    let mut t = Tally {
        screens: 1,
        ..Tally::default()
    };
    // dp in this screen's pixels (phone-sim lays its screens out 360 dp wide, as WeChat).
    let dp = |v: f32| (v * width as f32 / 360.0).round() as i32;
    // Whole: the bubble and, in groups, the name line above it inside the list.
    let whole = |m: &&ChatItem| {
        let name = if m.sender.is_some() { dp(16.5) } else { 0 };
        m.bounds.top - name > list.top + 1 && m.bounds.bottom < list.bottom - 1
    };
    // The sim puts a group member's name 16.5 dp above the bubble. Where the list's edge
    // comes within a few dp of it, the reader (which estimates that edge) may or may not
    // leave the message out: neither is scored.
    let borderline = |m: &ChatItem| {
        let top = if m.sender.is_some() {
            m.bounds.top - dp(16.5)
        } else {
            m.bounds.top
        };
        (top - list.top).abs() <= dp(6.0)
    };
    let names: Vec<String> = truth.iter().filter_map(|m| m.sender.clone()).collect();
    let mut matched = vec![false; seen.len()];
    for m in truth.iter().filter(whole) {
        if borderline(m) {
            if let Some(i) = seen.iter().position(|s| overlap(&s.bounds, &m.bounds) > 0) {
                matched[i] = true;
            }
            continue;
        }
        let best = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                overlap(&s.bounds, &m.bounds) * 2 > m.bounds.height().min(s.bounds.height())
            })
            .max_by_key(|(_, s)| overlap(&s.bounds, &m.bounds));
        if !m.is_message() {
            t.centre += 1;
            if let Some((i, s)) = best {
                matched[i] = true;
                let ok = s.kind == m.kind
                    && fold(s.text.as_deref().unwrap_or(""))
                        == fold(m.text.as_deref().unwrap_or(""));
                t.centre_ok += usize::from(ok);
                if !ok {
                    failures.push(format!(
                        "{label}: centre {:?} {:?} read as {:?} {:?}",
                        m.kind, m.text, s.kind, s.text
                    ));
                }
            } else {
                failures.push(format!("{label}: centre line {:?} missed", m.text));
            }
            continue;
        }
        t.messages += 1;
        let truth_text = fold(m.text.as_deref().unwrap_or(""));
        let truth_emoji = m
            .text
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| ('\u{1F000}'..='\u{1FAFF}').contains(c))
            .count();
        t.emoji_truth += truth_emoji;
        let Some((i, s)) = best else {
            t.missed += 1;
            t.chars += truth_text.len();
            t.errors += truth_text.len();
            if m.sender.is_some() {
                t.senders += 1;
            }
            failures.push(format!(
                "{label}: missed {:?} {:?} {:?} at {}",
                m.kind, m.side, m.text, m.bounds
            ));
            continue;
        };
        matched[i] = true;
        t.emoji_seen += emoji.get(i).copied().unwrap_or(0);
        let text_kind = m.kind == ItemKind::Text;
        let kind_ok = if text_kind {
            s.kind == ItemKind::Text
        } else {
            s.kind == ItemKind::Media
        };
        t.kinds_ok += usize::from(kind_ok);
        if !kind_ok {
            failures.push(format!(
                "{label}: kind {:?} read as {:?} ({:?})",
                m.kind, s.kind, m.text
            ));
        }
        if text_kind {
            let read = fold(s.text.as_deref().unwrap_or(""));
            let d = distance(&truth_text, &read);
            t.chars += truth_text.len();
            t.errors += d.min(truth_text.len().max(read.len()));
            if d > 0 {
                failures.push(format!(
                    "{label}: text {:?} read as {:?} ({d} edits)",
                    m.text.as_deref().unwrap_or(""),
                    s.text.as_deref().unwrap_or("")
                ));
            }
        }
        let side_ok = s.side == m.side;
        t.sides_ok += usize::from(side_ok);
        if !side_ok {
            failures.push(format!(
                "{label}: side of {:?}: {:?} read as {:?}",
                m.text, m.side, s.side
            ));
        }
        match (&m.sender, &s.sender) {
            (Some(name), read) => {
                t.senders += 1;
                let read = read.as_deref().unwrap_or("");
                let d_true = distance(&fold(name), &fold(read));
                let closest = names
                    .iter()
                    .all(|other| other == name || distance(&fold(other), &fold(read)) > d_true);
                let ok = !read.is_empty() && closest;
                t.senders_ok += usize::from(ok);
                t.senders_exact += usize::from(d_true == 0);
                if d_true > 0 {
                    failures.push(format!("{label}: sender {name:?} read as {read:?}"));
                }
            }
            (None, Some(read)) => {
                t.senders += 1;
                failures.push(format!(
                    "{label}: a sender {read:?} where there is none ({:?})",
                    m.text
                ));
            }
            (None, None) => {}
        }
    }
    // A centre line whose box the list cuts may still show its whole text: read or not, it
    // is no error. A cut bubble read is one (the reader must leave it out).
    for (i, s) in seen.iter().enumerate() {
        let cut_centre = !s.is_message()
            && truth
                .iter()
                .any(|m| !m.is_message() && !whole(&m) && overlap(&s.bounds, &m.bounds) > 0);
        if !matched[i] && !cut_centre {
            t.extra += 1;
            failures.push(format!(
                "{label}: extra {:?} {:?} {:?} at {}",
                s.kind, s.side, s.text, s.bounds
            ));
        }
    }
    t
}

#[test]
fn vision_reads_the_corpus_like_the_tree_reader() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let maps = UiMaps::load_dir(&root.join("ui-maps")).expect("ui maps");
    let map = maps.by_name("wechat-8.0").expect("8.0 map").clone();
    // Every engine Tapwire offers, each held to the same bar (scripts/setup installs both).
    let mut engines: Vec<Box<dyn OcrEngine>> = ocr::EngineKind::ALL
        .into_iter()
        .map(|kind| {
            kind.load()
                .unwrap_or_else(|e| panic!("{e} (scripts/setup installs every engine)"))
        })
        .collect();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vision-corpus");
    std::fs::create_dir_all(&out_dir).expect("output dir");
    let started = Instant::now();
    let mut report = Vec::new();
    let mut all_failures = Vec::new();
    let mut totals = Vec::new();
    for engine in engines.iter_mut() {
        let mut per: BTreeMap<String, Tally> = BTreeMap::new();
        let mut total = Tally::default();
        for (k, screen) in [Screen::HD, Screen::FHD, Screen::QHD]
            .into_iter()
            .enumerate()
        {
            for (j, theme) in [Theme::Light, Theme::Dark].into_iter().enumerate() {
                let device = build_device(&SimConfig {
                    scenario: Scenario::default(),
                    screen,
                    theme,
                    ..SimConfig::default()
                })
                .expect("device");
                let mut rng = fastrand::Rng::with_seed((k * 2 + j) as u64 + 11);
                let chats = fill(&device, &mut rng);
                let label = format!("{screen} {theme:?}").to_lowercase();
                let mut tally = Tally::default();
                for chat in &chats {
                    device.with(|st| st.wechat.open_chat(chat));
                    let png = device.screencap_png().expect("screenshot");
                    let dump = Dump::parse(&device.dump_xml()).expect("dump");
                    let truth = read_screen(&dump, &map);
                    let truth_chat = truth.chat.expect("a chat in the dump");
                    let list = truth_chat.message_list.expect("message list");
                    let read =
                        vision::read_screenshot(&png, engine.as_mut()).expect("vision reading");
                    let seen = read
                        .reading
                        .chat
                        .as_ref()
                        .map(|c| c.messages.clone())
                        .unwrap_or_default();
                    let name = format!("{label}-{chat}");
                    if read.reading.kind != tapwire_device_agent::ScreenKind::Chat {
                        all_failures.push(format!("{name}: read as {:?}", read.reading.kind));
                    }
                    let mut failures = Vec::new();
                    let mut s = score(
                        &truth_chat.messages,
                        list,
                        screen.width,
                        &seen,
                        &read.emoji,
                        &mut failures,
                        &name,
                    );
                    s.ocr = read.timings.ocr;
                    s.segment = read.timings.segment;
                    if !failures.is_empty() {
                        std::fs::write(
                            out_dir.join(format!("{}.png", name.replace(' ', "-"))),
                            &png,
                        )
                        .expect("save");
                    }
                    all_failures.extend(failures);
                    tally.add(&s);
                }
                total.add(&tally);
                per.insert(label, tally);
            }
        }
        report.push(format!("engine {}:", engine.name()));
        for (label, t) in &per {
            report.push(format!("  {}", t.line(label)));
        }
        report.push(format!("  {}", total.line("all")));
        totals.push((engine.name().to_string(), total));
    }
    report.push(format!(
        "corpus run in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let text = report.join("\n");
    eprintln!("{text}");
    for f in &all_failures {
        eprintln!("  {f}");
    }
    std::fs::write(
        out_dir.join("report.txt"),
        format!("{text}\n{}\n", all_failures.join("\n")),
    )
    .expect("report");

    for (engine, total) in &totals {
        assert!(
            total.messages >= 300,
            "{engine}: the corpus holds {} whole messages, fewer than 300",
            total.messages
        );
        assert!(
            total.char_accuracy() >= 0.98,
            "{engine}: character accuracy {:.2}% < 98%",
            100.0 * total.char_accuracy()
        );
        assert_eq!(total.sides_ok, total.messages, "{engine}: every side right");
        assert_eq!(
            total.senders_ok, total.senders,
            "{engine}: every sender right"
        );
        assert_eq!(
            total.extra, 0,
            "{engine}: nothing read that the tree reader does not see whole"
        );
    }
}
