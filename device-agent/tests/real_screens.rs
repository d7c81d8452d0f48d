//! The vision reader on real WeChat screenshots (`fixtures/real-screens/`): phones, fonts,
//! bars, JPEG noise and builds no one here drew. The expected readings are the tables of
//! `fixtures/real-screens/README.md`, written by hand from the pictures and parsed here (the
//! README is their only copy).
//!
//! Per screen the test prints and checks, for chats: items found of those expected (messages,
//! time dividers, system lines), each on the right side with the right kind, group senders,
//! nothing read that is not there (a cut bubble, a floating pill, a bubble inside a picture);
//! for lists: rows found, unread and muted marks. Characters are measured as
//! `vision_corpus.rs` measures them: 1 − (edit distance / length) over all expected texts,
//! after NFKC, without whitespace and without emoji (the reader blanks emoji before OCR).
//!
//! Why 95 % characters and not the corpus's 98 %: the corpus is phone-sim's own pixels in the
//! font tesseract reads best; these are other vendors' system fonts, grey-on-grey previews
//! at 720 px, JPEG noise around every glyph, ellipses where WeChat cut a line, and a tag
//! (`AI`) drawn inside a title. Tesseract's maintainers say not to expect English-level
//! accuracy on Chinese (DESIGN.md §4); 95 % still means one wrong glyph in twenty, which the
//! router's dedup keys tolerate (a key is the text as read twice the same way, not the truth).

use std::path::PathBuf;

use tapwire_device_agent::ocr::{EngineKind, OcrEngine};
use tapwire_device_agent::reader::vision;
use tapwire_device_agent::screen::{ChatItem, ConversationRow, ItemKind, ScreenKind, Side, Unread};
use unicode_normalization::UnicodeNormalization;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/real-screens"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Whole,
    Cut,
    May,
}

#[derive(Debug, Clone)]
struct Item {
    side: Side,
    kind: ItemKind,
    sender: Option<String>,
    text: String,
    edge: Edge,
}

#[derive(Debug, Clone)]
struct Row {
    title: String,
    preview: String,
    time: String,
    unread: Unread,
    muted: bool,
}

#[derive(Debug, Clone)]
struct Expected {
    file: String,
    screen: ScreenKind,
    title: String,
    /// What the input field holds (`- input:`), and whether `发送` shows (`- send: yes`).
    input: Option<String>,
    send: bool,
    items: Vec<Item>,
    rows: Vec<Row>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// The README's sections `### \`file\`` with their `- screen:`/`- title:` lines and tables.
fn expectations() -> Vec<Expected> {
    let readme = std::fs::read_to_string(dir().join("README.md")).expect("README");
    let mut out: Vec<Expected> = Vec::new();
    for line in readme.lines() {
        if let Some(rest) = line.strip_prefix("### `") {
            out.push(Expected {
                file: rest.trim_end_matches('`').to_string(),
                screen: ScreenKind::Other,
                title: String::new(),
                input: None,
                send: false,
                items: Vec::new(),
                rows: Vec::new(),
            });
            continue;
        }
        let Some(e) = out.last_mut() else { continue };
        if let Some(s) = line.strip_prefix("- screen:") {
            e.screen = match s.trim() {
                "chat" => ScreenKind::Chat,
                "list" => ScreenKind::ConversationList,
                other => panic!("screen kind {other:?}"),
            };
        } else if let Some(t) = line.strip_prefix("- title:") {
            e.title = t.trim().to_string();
        } else if let Some(t) = line.strip_prefix("- input:") {
            e.input = Some(t.trim().to_string());
        } else if let Some(t) = line.strip_prefix("- send:") {
            e.send = t.trim() == "yes";
        } else if line.starts_with("| ") {
            let c = cells(line);
            if c[0].parse::<u32>().is_err() {
                continue;
            }
            match e.screen {
                ScreenKind::Chat => e.items.push(Item {
                    side: match c[1].as_str() {
                        "left" => Side::Left,
                        "right" => Side::Right,
                        "centre" => Side::Centre,
                        s => panic!("side {s:?}"),
                    },
                    kind: match c[2].as_str() {
                        "text" => ItemKind::Text,
                        "media" => ItemKind::Media,
                        "divider" => ItemKind::TimeDivider,
                        "system" => ItemKind::System,
                        k => panic!("kind {k:?}"),
                    },
                    sender: Some(c[3].clone()).filter(|s| !s.is_empty()),
                    text: c[4].clone(),
                    edge: match c[5].as_str() {
                        "" => Edge::Whole,
                        "cut" => Edge::Cut,
                        "may" => Edge::May,
                        x => panic!("edge {x:?}"),
                    },
                }),
                ScreenKind::ConversationList => e.rows.push(Row {
                    title: c[1].clone(),
                    preview: c[2].clone(),
                    time: c[3].clone(),
                    unread: match c[4].as_str() {
                        "none" => Unread::None,
                        "dot" => Unread::Dot,
                        n => Unread::Count(n.parse().expect("count")),
                    },
                    muted: c[5] == "yes",
                }),
                _ => panic!("a table before `- screen:` in {}", e.file),
            }
        }
    }
    out
}

fn is_emoji(c: char) -> bool {
    ('\u{1F000}'..='\u{1FAFF}').contains(&c)
        || ('\u{2600}'..='\u{27BF}').contains(&c)
        || matches!(c, '\u{FE0F}' | '\u{200D}' | '\u{20E3}')
}

fn fold(s: &str) -> String {
    s.nfkc()
        .filter(|c| !c.is_whitespace() && !is_emoji(*c))
        .collect()
}

fn dist(a: &str, b: &str) -> usize {
    strsim::levenshtein(&fold(a), &fold(b))
}

#[derive(Default, Debug)]
struct Score {
    want: usize,
    found: usize,
    sides: usize,
    kinds: usize,
    senders: usize,
    senders_ok: usize,
    chars: usize,
    errors: usize,
    extra: Vec<String>,
    missed: Vec<String>,
    wrong: Vec<String>,
}

impl Score {
    fn accuracy(&self) -> f64 {
        1.0 - self.errors as f64 / self.chars.max(1) as f64
    }
    fn text(&mut self, want: &str, got: &str) {
        let n = fold(want).chars().count();
        self.chars += n;
        self.errors += dist(want, got).min(n);
    }
}

/// Longest common subsequence of `a` and `b` under `fits`, as index pairs.
fn align<A, B>(a: &[A], b: &[B], fits: impl Fn(&A, &B) -> Option<usize>) -> Vec<(usize, usize)> {
    // Score: matches first, then closeness (smaller cost better).
    let (n, m) = (a.len(), b.len());
    let mut best = vec![vec![(0i64, 0i64); m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let mut v = best[i + 1][j].max(best[i][j + 1]);
            if let Some(cost) = fits(&a[i], &b[j]) {
                let d = best[i + 1][j + 1];
                v = v.max((d.0 + 1, d.1 - cost as i64));
            }
            best[i][j] = v;
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if let Some(cost) = fits(&a[i], &b[j]) {
            let d = best[i + 1][j + 1];
            if best[i][j] == (d.0 + 1, d.1 - cost as i64) {
                out.push((i, j));
                i += 1;
                j += 1;
                continue;
            }
        }
        if best[i + 1][j] >= best[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn short(s: &str) -> String {
    s.chars().take(16).collect()
}

fn score_chat(e: &Expected, read: &[ChatItem]) -> Score {
    let mut s = Score::default();
    // An expected item and a read one may be the same when they are both messages or both
    // centre lines on the same side; among those the closest texts pair up.
    let centre = |k: ItemKind| matches!(k, ItemKind::TimeDivider | ItemKind::System);
    // A cut item pairs with nothing: anything read for it is extra.
    let pairs = align(&e.items, read, |w, r| {
        (w.edge != Edge::Cut && w.side == r.side && centre(w.kind) == centre(r.kind)).then(|| {
            dist(&w.text, r.text.as_deref().unwrap_or(""))
                + dist(
                    w.sender.as_deref().unwrap_or(""),
                    r.sender.as_deref().unwrap_or(""),
                )
        })
    });
    let names: Vec<&str> = e.items.iter().filter_map(|i| i.sender.as_deref()).collect();
    for (i, w) in e.items.iter().enumerate() {
        let got = pairs.iter().find(|(a, _)| *a == i).map(|(_, b)| &read[*b]);
        match (w.edge, got) {
            (Edge::Cut, _) | (Edge::May, None) => {}
            (Edge::Whole, None) => {
                s.want += 1;
                s.missed
                    .push(format!("{:?} {:?} {}", w.side, w.kind, short(&w.text)));
                s.text(&w.text, "");
            }
            (_, Some(r)) => {
                s.want += 1;
                s.found += 1;
                s.sides += usize::from(r.side == w.side);
                if r.kind == w.kind {
                    s.kinds += 1;
                } else {
                    s.wrong.push(format!(
                        "{} read as {:?}, is {:?}",
                        short(&w.text),
                        r.kind,
                        w.kind
                    ));
                }
                s.text(&w.text, r.text.as_deref().unwrap_or(""));
                if let Some(name) = &w.sender {
                    s.senders += 1;
                    // Right when the name read is closest to this sender among the screen's
                    // names (as vision_corpus.rs counts); exact reads are in the text score.
                    let ok = r.sender.as_deref().is_some_and(|got| {
                        names.iter().all(|n| dist(got, name) <= dist(got, n))
                            && dist(got, name) * 2 < fold(name).chars().count()
                    });
                    s.senders_ok += usize::from(ok);
                    if !ok {
                        s.wrong
                            .push(format!("sender {:?} read as {:?}", name, r.sender));
                    }
                    s.text(name, r.sender.as_deref().unwrap_or(""));
                } else if r.sender.is_some() {
                    s.wrong.push(format!("sender {:?} where none is", r.sender));
                }
            }
        }
    }
    for (j, r) in read.iter().enumerate() {
        if !pairs.iter().any(|(_, b)| *b == j) {
            s.extra
                .push(format!("{:?} {:?} {:?}", r.side, r.kind, r.text));
        }
    }
    s
}

fn score_list(e: &Expected, rows: &[ConversationRow]) -> Score {
    let mut s = Score::default();
    let pairs = align(&e.rows, rows, |w, r| {
        let d = dist(&w.title, r.title.as_deref().unwrap_or(""));
        (d * 2 <= fold(&w.title).chars().count()).then_some(d)
    });
    for (i, w) in e.rows.iter().enumerate() {
        s.want += 1;
        let Some(r) = pairs.iter().find(|(a, _)| *a == i).map(|(_, b)| &rows[*b]) else {
            s.missed.push(short(&w.title));
            for t in [&w.title, &w.preview, &w.time] {
                s.text(t, "");
            }
            continue;
        };
        s.found += 1;
        s.text(&w.title, r.title.as_deref().unwrap_or(""));
        s.text(&w.preview, r.preview.as_deref().unwrap_or(""));
        s.text(&w.time, r.time.as_deref().unwrap_or(""));
        // Unread marks and mutes stand where sides and kinds stand in a chat.
        s.sides += usize::from(r.unread == w.unread);
        s.kinds += usize::from(r.muted == Some(w.muted));
        if r.unread != w.unread {
            s.wrong.push(format!(
                "{}: unread {:?}, is {:?}",
                short(&w.title),
                r.unread,
                w.unread
            ));
        }
        if r.muted != Some(w.muted) {
            s.wrong.push(format!(
                "{}: muted {:?}, is {}",
                short(&w.title),
                r.muted,
                w.muted
            ));
        }
    }
    for (j, r) in rows.iter().enumerate() {
        if !pairs.iter().any(|(_, b)| *b == j) {
            s.extra.push(format!("row {:?}", r.title));
        }
    }
    s
}

fn engine(kind: EngineKind) -> Box<dyn OcrEngine> {
    kind.load()
        .unwrap_or_else(|e| panic!("{e} (scripts/setup installs every engine)"))
}

/// The least share of characters each engine must read right on a screen.
struct Min {
    tesseract: f64,
    ppocr: f64,
}

/// Reads `file` as `tapwire read FILE.png` does, with each engine, and checks it against
/// the README.
///
/// `known` lists the failures the README's "What fails" names, each as a piece of the
/// message this test prints for it: those and only those may occur, and each must still
/// occur (a fix then shows here, and the README and this list are brought up to date).
fn check(file: &str, min: Min, known: &[&str]) {
    for kind in EngineKind::ALL {
        let min_chars = match kind {
            EngineKind::Tesseract => min.tesseract,
            EngineKind::Ppocr => min.ppocr,
        };
        check_with(file, kind, min_chars, known);
    }
}

fn check_with(file: &str, kind: EngineKind, min_chars: f64, known: &[&str]) {
    let all = expectations();
    let e = all
        .iter()
        .find(|e| e.file == file)
        .unwrap_or_else(|| panic!("{file} has no section in the README"));
    let bytes = std::fs::read(dir().join(file)).expect("fixture");
    let read = vision::read_screenshot(&bytes, engine(kind).as_mut()).expect("read");
    let file = format!("{file} ({})", kind.name());
    let reading = read.reading;
    assert_eq!(reading.kind, e.screen, "{file}: screen kind; {reading:#?}");
    let (mut s, title) = match e.screen {
        ScreenKind::Chat => {
            let chat = reading.chat.as_ref().expect("chat");
            (score_chat(e, &chat.messages), chat.title.clone())
        }
        _ => {
            let list = reading.list.as_ref().expect("list");
            (score_list(e, &list.rows), list.title.clone())
        }
    };
    // The input field's text counts with the characters; the send button must show exactly
    // when the README says it does (the actor taps it by its place on the screenshot).
    if let Some(chat) = &reading.chat {
        let typed = chat.input.as_ref().map_or("", |i| i.text.as_str());
        s.text(e.input.as_deref().unwrap_or(""), typed);
        if e.input.is_none() && !typed.is_empty() {
            s.extra.push(format!("input {typed:?}"));
        }
        if chat.send_button.is_some() != e.send {
            s.wrong.push(format!("send button {:?}", chat.send_button));
        }
    }
    let what = if e.screen == ScreenKind::Chat {
        ("items", "sides", "kinds")
    } else {
        ("rows", "unread", "muted")
    };
    eprintln!(
        "{file}: {} {}/{}  {} {}/{}  {} {}/{}  senders {}/{}  chars {:.1}% ({} errors / {})  extra {}  title {:?} (is {:?})  segment {:.0} ms  OCR {:.0} ms",
        what.0,
        s.found,
        s.want,
        what.1,
        s.sides,
        s.found,
        what.2,
        s.kinds,
        s.found,
        s.senders_ok,
        s.senders,
        100.0 * s.accuracy(),
        s.errors,
        s.chars,
        s.extra.len(),
        title,
        e.title,
        read.timings.segment.as_secs_f64() * 1000.0,
        read.timings.ocr.as_secs_f64() * 1000.0,
    );
    for m in &s.missed {
        eprintln!("  missed: {m}");
    }
    for x in &s.extra {
        eprintln!("  extra: {x}");
    }
    for w in &s.wrong {
        eprintln!("  wrong: {w}");
    }
    if e.screen == ScreenKind::Chat {
        let chat = reading.chat.as_ref().expect("chat");
        eprintln!(
            "  input: {:?}, send button {:?}",
            chat.input.as_ref().map(|i| &i.text),
            chat.send_button
        );
        for m in &chat.messages {
            eprintln!(
                "  read: {:?} {:?} {:?} {:?}",
                m.side, m.kind, m.sender, m.text
            );
        }
    } else {
        for r in &reading.list.as_ref().expect("list").rows {
            eprintln!(
                "  read: {:?} | {:?} | {:?} | {:?} muted {:?}",
                r.title, r.preview, r.time, r.unread, r.muted
            );
        }
    }
    let failures: Vec<String> = s
        .missed
        .iter()
        .map(|m| format!("missed: {m}"))
        .chain(s.extra.iter().map(|x| format!("extra: {x}")))
        .chain(s.wrong.iter().map(|w| format!("wrong: {w}")))
        .collect();
    for f in &failures {
        assert!(
            known.iter().any(|k| f.contains(k)),
            "{file}: {f} (all: {failures:#?})"
        );
    }
    for k in known {
        assert!(
            failures.iter().any(|f| f.contains(k)),
            "{file}: the known failure {k:?} no longer occurs: update the README and this test"
        );
    }
    assert!(
        s.accuracy() >= min_chars,
        "{file}: characters {:.1}% < {:.0}%",
        100.0 * s.accuracy(),
        100.0 * min_chars
    );
}

#[test]
fn the_readme_lists_every_fixture_and_parses() {
    let e = expectations();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("dir")
        .filter_map(|f| f.ok())
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = e.iter().map(|e| e.file.clone()).collect();
    listed.sort();
    assert_eq!(files, listed);
    for x in &e {
        assert!(
            !x.items.is_empty() || !x.rows.is_empty(),
            "{}: no table",
            x.file
        );
    }
}

#[test]
fn vivo_conversation_list_720() {
    // Rows, unread marks and mutes right; grey glyphs at 720 px cost tesseract a few
    // characters, the `…` of cut lines costs PP-OCR some (README).
    check(
        "list-8.0.x-vivo-720x1608.png",
        Min {
            tesseract: 0.98,
            ppocr: 0.96,
        },
        &[],
    );
}

#[test]
fn xiaomi_conversation_list_1080() {
    // Rows, unread marks and mutes right; grey glyphs under JPEG noise cost characters
    // (README, "What fails").
    check(
        "list-8.0.x-xiaomi-1080x2400.png",
        Min {
            tesseract: 0.95,
            ppocr: 0.98,
        },
        &[],
    );
}

#[test]
fn vivo_group_chat_with_system_lines_720() {
    check(
        "group-8.0.x-vivo-720x1608.png",
        Min {
            tesseract: 0.96,
            ppocr: 0.98,
        },
        &[],
    );
}

#[test]
fn xiaomi_private_chat_1080() {
    check(
        "private-8.0.x-xiaomi-1080x2400.png",
        Min {
            tesseract: 0.99,
            ppocr: 0.99,
        },
        &[],
    );
}

#[test]
fn xiaomi_group_chat_of_pictures_1080() {
    // Structure exact; tesseract reads `昀` of the sender's name as `隐` or `罗`, PP-OCR
    // reads it right (README).
    check(
        "group-pictures-8.0.x-xiaomi-1080x2400.png",
        Min {
            tesseract: 0.94,
            ppocr: 0.99,
        },
        &[],
    );
}

#[test]
fn xiaomi_group_chat_with_text_typed_1080() {
    check(
        "group-typed-8.0.x-xiaomi-1080x2400.png",
        Min {
            tesseract: 0.90,
            ppocr: 0.99,
        },
        &[],
    );
}

#[test]
fn a_2019_private_chat_cropped_upstream() {
    // Structure exact; JPEG noise costs glyphs (`啥`, `。。。`: README, "What fails").
    check(
        "private-7.0.x-2019-cropped-1080x1771.png",
        Min {
            tesseract: 0.92,
            ppocr: 0.95,
        },
        &[],
    );
}

/// `REAL_SCREEN=file cargo test --test real_screens layout -- --ignored --nocapture` prints
/// what segmentation found on one fixture, to see why a reading is wrong.
#[test]
#[ignore]
fn layout() {
    use tapwire_device_agent::reader::vision::segment::{self, Grid, Layout};
    let file = std::env::var("REAL_SCREEN").expect("REAL_SCREEN=<file>");
    let img = vision::decode_screenshot(&std::fs::read(dir().join(&file)).expect("fixture"))
        .expect("decode");
    let grid = Grid::new(&img);
    match segment::segment(&grid) {
        Layout::Chat(c) => {
            eprintln!(
                "bg {:?} area {:?} title {:?}",
                c.background, c.area, c.title
            );
            for b in &c.blocks {
                eprintln!(
                    "{:?} cells {:?} sender {:?}",
                    b.block,
                    b.cells,
                    b.sender.map(|s| s.cells)
                );
            }
        }
        Layout::List(l) => {
            for r in &l.rows {
                eprintln!("{r:?}");
            }
        }
        Layout::Other => eprintln!("other"),
    }
}
