//! Screenshot → screen reading at 1080×2400, per chat screen, split into decoding,
//! segmentation and OCR, with one warm engine on one core (`OMP_THREAD_LIMIT=1`, set by
//! `.cargo/config.toml`; ONNX Runtime is given one thread): tesseract, then PP-OCR
//! (`TAPWIRE_OCR` picks one).
//!
//! `cargo bench -p tapwire-device-agent --bench vision` (or `scripts/bench`). The chat
//! screens come from phone-sim (the corpus test's kind of content: Chinese, English,
//! digits, emoji, long lines, groups), light and dark; their PNGs are written to
//! `target/bench-vision/` for `scripts/bench.d/vision.py`, the same work with pytesseract.
//! Prints one line per measure; docs/benchmarks.md keeps the figures.

// A benchmark report is printed output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tapwire_device_agent::ocr;
use tapwire_device_agent::reader::vision;
use tapwire_phone_sim::wechat::model::MsgKind;
use tapwire_phone_sim::{Scenario, Screen, SimConfig, Theme, build_device};

const TEXTS: &[&str] = &[
    "周五之前把设计稿发我，谢谢！",
    "OK, I'll send v2 by tonight",
    "订单号 20260115083012",
    "明天 9:30 在 Room 1207 开 weekly sync",
    "哈哈😂😂",
    "会议纪要：第一，项目进度整体正常，前端已经完成百分之八十；第二，后端接口下周三联调。",
    "收到，我马上处理",
    "Can you review the PR?",
    "iPhone 15 Pro 到货了，价格 7999 元",
    "晚上一起吃饭吗？",
    "The new release fixes the login bug on Android 14 and makes sync 2x faster.",
    "好的👍",
];
const SENDERS: &[&str] = &["王芳", "Bob", "李雷", "Amy Chen"];

struct Shot {
    name: String,
    png: Vec<u8>,
    raw: Vec<u8>,
    /// The same chat a moment before, one message fewer.
    before: Vec<u8>,
}

/// Six chats (groups and private) in each theme, each opened for one screen.
fn screens() -> Vec<Shot> {
    let mut shots = Vec::new();
    for theme in [Theme::Light, Theme::Dark] {
        let device = build_device(&SimConfig {
            scenario: Scenario::default(),
            screen: Screen::FHD,
            theme,
            ..SimConfig::default()
        })
        .expect("device");
        let chats = ["项目群", "Alice", "家人群", "客户A", "读书会", "Weekly"];
        device.with(|st| {
            let mut ts = st.clock.now() - 7200;
            for (c, chat) in chats.iter().enumerate() {
                let group = c % 2 == 0;
                st.wechat.configure_chat(chat, group, false, false);
                for i in 0..14 {
                    ts += if i % 5 == 0 { 600 } else { 30 };
                    let text = TEXTS[(i * 7 + c * 3) % TEXTS.len()];
                    if (i + c) % 3 == 0 {
                        st.wechat.outgoing_by_owner(chat, text, ts);
                    } else {
                        let sender = SENDERS[(i + c) % SENDERS.len()];
                        st.wechat
                            .incoming(chat, group, Some(sender), text, MsgKind::Text, ts);
                    }
                }
            }
        });
        for chat in chats {
            device.with(|st| st.wechat.open_chat(chat));
            let before = device.screencap_png().expect("png");
            device.with(|st| {
                let ts = st.clock.now();
                st.wechat.incoming(
                    chat,
                    true,
                    Some("Bob"),
                    "新的一条：5 点见",
                    MsgKind::Text,
                    ts,
                );
            });
            shots.push(Shot {
                name: format!("{chat}-{theme:?}").to_lowercase(),
                png: device.screencap_png().expect("png"),
                raw: device.screencap_raw(),
                before,
            });
        }
    }
    shots
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let shots = screens();
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/bench-vision"
    ));
    std::fs::create_dir_all(&dir).expect("output dir");
    for s in &shots {
        std::fs::write(dir.join(format!("{}.png", s.name)), &s.png).expect("write PNG");
    }
    // Every engine, one after the other, on the same screens; `TAPWIRE_OCR` picks one.
    let kinds: Vec<ocr::EngineKind> = match std::env::var(ocr::ENGINE_ENV) {
        Ok(name) => vec![name.parse().expect("TAPWIRE_OCR: tesseract or ppocr")],
        Err(_) => ocr::EngineKind::ALL.to_vec(),
    };
    for kind in kinds {
        measure(kind, &shots);
    }
    println!(
        "vision png sizes: mean {:.0} KB PNG, {:.0} KB raw",
        shots.iter().map(|s| s.png.len()).sum::<usize>() as f64 / 1024.0 / shots.len() as f64,
        shots.iter().map(|s| s.raw.len()).sum::<usize>() as f64 / 1024.0 / shots.len() as f64
    );
}

fn measure(kind: ocr::EngineKind, shots: &[Shot]) {
    let load = Instant::now();
    let mut engine = kind
        .load()
        .unwrap_or_else(|e| panic!("{e} (scripts/setup installs every engine)"));
    println!(
        "vision engine {} loaded in {:.0} ms (once per thread); OMP_THREAD_LIMIT={}",
        engine.name(),
        ms(load.elapsed()),
        std::env::var("OMP_THREAD_LIMIT").unwrap_or_else(|_| "unset".into())
    );
    // Warm: the first lines read load the models' remaining pages.
    for s in shots {
        vision::read_screenshot(&s.png, engine.as_mut()).expect("reading");
    }
    const ROUNDS: usize = 3;
    let (mut png_decode, mut raw_decode, mut segment, mut ocr_t, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut crops = 0;
    let mut messages = 0;
    for _ in 0..ROUNDS {
        for s in shots {
            let started = Instant::now();
            let r = vision::read_screenshot(&s.png, engine.as_mut()).expect("reading");
            total.push(ms(started.elapsed()));
            png_decode.push(ms(r.timings.decode));
            segment.push(ms(r.timings.segment));
            ocr_t.push(ms(r.timings.ocr));
            crops += r.timings.crops;
            messages += r.reading.chat.map_or(0, |c| c.messages.len());
            let started = Instant::now();
            vision::decode_screenshot(&s.raw).expect("raw");
            raw_decode.push(ms(started.elapsed()));
        }
    }
    let n = (ROUNDS * shots.len()) as f64;
    for v in [
        &mut png_decode,
        &mut raw_decode,
        &mut segment,
        &mut ocr_t,
        &mut total,
    ] {
        v.sort_by(f64::total_cmp);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let name = engine.name().to_string();
    println!(
        "vision rust {name} 1080x2400: {} screens x {ROUNDS}, {:.1} items and {:.1} OCR lines per screen",
        shots.len(),
        messages as f64 / n,
        crops as f64 / n
    );
    for (label, v) in [
        ("decode PNG (screencap -p)", &png_decode),
        ("decode raw (screencap)", &raw_decode),
        ("segmentation", &segment),
        ("OCR (all lines)", &ocr_t),
        ("PNG -> reading, total", &total),
    ] {
        println!(
            "vision rust {name} {label:<26} mean {:>7.1} ms  p50 {:>7.1} ms  max {:>7.1} ms",
            mean(v),
            percentile(v, 0.5),
            percentile(v, 1.0)
        );
    }
    // A chat read again after one new message, with the lines of the read before cached.
    let mut warm = Vec::new();
    let mut hits = 0;
    let mut lines = 0;
    for s in shots {
        let mut cache = vision::LineCache::default();
        vision::read_screenshot_cached(&s.before, engine.as_mut(), Some(&mut cache))
            .expect("reading");
        let started = Instant::now();
        let r = vision::read_screenshot_cached(&s.png, engine.as_mut(), Some(&mut cache))
            .expect("reading");
        warm.push(ms(started.elapsed()));
        hits += cache.hits;
        lines += r.timings.crops;
    }
    warm.sort_by(f64::total_cmp);
    println!(
        "vision rust {name} re-read after one new message (line cache, {:.0} % of lines cached) mean {:>7.1} ms  p50 {:>7.1} ms",
        100.0 * hits as f64 / lines.max(1) as f64,
        mean(&warm),
        percentile(&warm, 0.5)
    );
    println!(
        "vision rust {name} raw -> reading (decode raw + segmentation + OCR): mean {:.1} ms",
        mean(&raw_decode) + mean(&segment) + mean(&ocr_t)
    );
}
