//! The screen read from a screenshot, for WeChat builds that hide their UI tree (8.0.55+
//! without a trusted accessibility service, DESIGN.md §4): the picture is segmented by
//! colour regions and connected components ([`segment`]), each piece of text is cut out,
//! normalised ([`crop`]) and read by an [`OcrEngine`], and the result is the same
//! [`ScreenReading`] the tree reader gives: the screen's kind, rows with title, preview,
//! time and badge, messages with side, sender, kind and text, bounds in screen pixels.
//!
//! The picture → reading step ([`read_screenshot`], [`read_image`]) works offline (`tapwire
//! read FILE.png`); [`VisionReader`] only adds taking the screenshot through the phone's
//! transport.
//!
//! What a screenshot cannot tell is left out, as the tree reader leaves out roles its map
//! does not know: avatars' names (`avatar` stays `None`), dialogs, emoji (blanked before
//! OCR; see [`crop`]). Messages cut by the top or bottom edge of the message list are left
//! out, as the tree reader's watermark logic expects whole messages only.

pub mod crop;
pub mod segment;

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use image::{GrayImage, RgbImage};
use serde::Serialize;

use self::segment::{Block, ChatLayout, Grid, Layout, ListLayout, Rgb, TextLine};
use super::{ReadError, ScreenReader};
use crate::dump::Rect;
use crate::ocr::{OcrEngine, OcrError, TextLayout};
use crate::screen::{
    ChatItem, ChatView, ConversationList, ConversationRow, InputBox, ItemKind, ScreenKind,
    ScreenReading, Side, Unread,
};
use crate::telemetry;
use crate::transport::Transport;

/// A directory to save every crop handed to the engine into (`crop-NNN.png`), to see what
/// the engine saw when a reading is wrong.
pub const CROPS_ENV: &str = "TAPWIRE_VISION_CROPS";

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("not a screenshot: {0}")]
    Decode(String),
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

/// How long each step of one reading took.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    #[serde(with = "millis")]
    pub decode: Duration,
    #[serde(with = "millis")]
    pub segment: Duration,
    #[serde(with = "millis")]
    pub ocr: Duration,
    /// Lines of text cut out: read by the engine, or found in the [`LineCache`].
    pub crops: usize,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

#[derive(Debug, Clone)]
pub struct VisionReading {
    pub reading: ScreenReading,
    pub timings: Timings,
    /// Emoji seen (and blanked) in message bubbles, per message in `reading`'s chat order.
    pub emoji: Vec<usize>,
}

/// Decodes `screencap -p` (PNG) or raw `screencap` output: width, height, pixel format
/// (1 = RGBA_8888) as little-endian u32s, from Android 9 a fourth one (the colour space),
/// then the rows (AOSP `frameworks/base/cmds/screencap/screencap.cpp`).
pub fn decode_screenshot(bytes: &[u8]) -> Result<RgbImage, VisionError> {
    if bytes.starts_with(b"\x89PNG") {
        return image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .map(|i| i.to_rgb8())
            .map_err(|e| VisionError::Decode(e.to_string()));
    }
    let word = |i: usize| {
        bytes
            .get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(w), Some(h), Some(format)) = (word(0), word(1), word(2)) else {
        return Err(VisionError::Decode(
            "shorter than a raw screencap header".into(),
        ));
    };
    let pixels = (w as usize).saturating_mul(h as usize).saturating_mul(4);
    let header = if bytes.len() == 16 + pixels {
        16
    } else if bytes.len() == 12 + pixels {
        12
    } else {
        return Err(VisionError::Decode(format!(
            "raw screencap of {w}x{h} should hold {pixels} pixel bytes after its header, has {}",
            bytes.len()
        )));
    };
    // 1 RGBA_8888 and 2 RGBX_8888 share the byte order; others are not what phones send.
    if !matches!(format, 1 | 2) || w == 0 || h == 0 {
        return Err(VisionError::Decode(format!(
            "raw screencap pixel format {format} ({w}x{h}) is not RGBA_8888"
        )));
    }
    let rgb: Vec<u8> = bytes[header..]
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    RgbImage::from_raw(w, h, rgb).ok_or_else(|| VisionError::Decode("raw size mismatch".into()))
}

/// Lines already read, by their pixels: a chat read again after one new message shows
/// mostly the lines it showed before (moved up, but each line is cut to its own ink, so
/// its picture is the same), and only the new ones go to the engine.
#[derive(Default)]
pub struct LineCache {
    lines: HashMap<u64, String>,
    /// Lines read from the cache since it was made.
    pub hits: usize,
}

impl LineCache {
    /// Enough for several screens of several chats; cleared whole when full.
    const MAX: usize = 4096;

    fn key(image: &GrayImage, layout: TextLayout) -> u64 {
        let mut h = DefaultHasher::new();
        (image.dimensions(), image.as_raw(), layout as u8).hash(&mut h);
        h.finish()
    }
}

/// Reads a screenshot file's bytes (PNG or raw).
pub fn read_screenshot(
    bytes: &[u8],
    engine: &mut dyn OcrEngine,
) -> Result<VisionReading, VisionError> {
    read_screenshot_cached(bytes, engine, None)
}

/// [`read_screenshot`], taking lines read before from `cache` and keeping new ones there.
pub fn read_screenshot_cached(
    bytes: &[u8],
    engine: &mut dyn OcrEngine,
    cache: Option<&mut LineCache>,
) -> Result<VisionReading, VisionError> {
    let started = Instant::now();
    let img = decode_screenshot(bytes)?;
    let decode = started.elapsed();
    let mut reading = read_image_cached(&img, engine, cache)?;
    reading.timings.decode = decode;
    Ok(reading)
}

/// Reads a decoded screenshot.
pub fn read_image(img: &RgbImage, engine: &mut dyn OcrEngine) -> Result<VisionReading, OcrError> {
    read_image_cached(img, engine, None)
}

/// [`read_image`] with a [`LineCache`].
pub fn read_image_cached(
    img: &RgbImage,
    engine: &mut dyn OcrEngine,
    cache: Option<&mut LineCache>,
) -> Result<VisionReading, OcrError> {
    let started = Instant::now();
    let grid = Grid::new(img);
    let layout = segment::segment(&grid);
    let segment = started.elapsed();
    // Without a cache kept between screens, one for this screen: a group's sender names
    // repeat (every message of one member carries the same name line, pixel for pixel), as
    // do short replies and time dividers, and the engine reads each picture once.
    let mut own = LineCache::default();
    let cache = Some(cache.unwrap_or(&mut own));
    let mut ocr = Ocr {
        grid: &grid,
        engine,
        cache,
        spent: Duration::ZERO,
        crops: 0,
    };
    let name = format!("vision:{}", ocr.engine.name());
    let mut reading = ScreenReading {
        kind: ScreenKind::Other,
        map: name,
        list: None,
        chat: None,
        dialog: None,
    };
    let mut emoji = Vec::new();
    match layout {
        Layout::Chat(chat) => {
            let (view, counts) = ocr.chat(&chat)?;
            reading.kind = ScreenKind::Chat;
            reading.chat = Some(view);
            emoji = counts;
        }
        Layout::List(list) => {
            reading.kind = ScreenKind::ConversationList;
            reading.list = Some(ocr.list(&list)?);
        }
        Layout::Other => {}
    }
    Ok(VisionReading {
        reading,
        timings: Timings {
            decode: Duration::ZERO,
            segment,
            ocr: ocr.spent,
            crops: ocr.crops,
        },
        emoji,
    })
}

struct Ocr<'a, 'g> {
    grid: &'a Grid<'g>,
    engine: &'a mut dyn OcrEngine,
    cache: Option<&'a mut LineCache>,
    spent: Duration,
    crops: usize,
}

impl Ocr<'_, '_> {
    /// Reads `rect` (screen pixels) drawn on `fill`; `None` when nothing is written there.
    fn read(
        &mut self,
        rect: Rect,
        fill: Rgb,
        layout: TextLayout,
        shape: crop::Shape,
        emoji: bool,
    ) -> Result<Option<(String, usize)>, OcrError> {
        let started = Instant::now();
        let result = self.read_inner(rect, fill, layout, shape, emoji);
        self.spent += started.elapsed();
        result
    }

    fn read_inner(
        &mut self,
        rect: Rect,
        fill: Rgb,
        layout: TextLayout,
        shape: crop::Shape,
        emoji: bool,
    ) -> Result<Option<(String, usize)>, OcrError> {
        let glyph = self.engine.line_px();
        let Some(prepared) = crop::prepare(self.grid.img, rect, fill, glyph, emoji, shape) else {
            return Ok(None);
        };
        let mut lines = Vec::new();
        for image in &prepared.lines {
            self.crops += 1;
            if let Some(dir) = std::env::var_os(CROPS_ENV) {
                let path = std::path::Path::new(&dir).join(format!("crop-{:03}.png", self.crops));
                if let Err(e) = image.save(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot save the crop");
                }
            }
            let line_layout = if layout == TextLayout::Word {
                TextLayout::Word
            } else {
                TextLayout::Line
            };
            let key = LineCache::key(image, line_layout);
            if let Some(cache) = self.cache.as_deref_mut()
                && let Some(text) = cache.lines.get(&key)
            {
                lines.push(text.clone());
                cache.hits += 1;
                continue;
            }
            let read = self.engine.recognise(image, line_layout)?;
            tracing::trace!(crop = self.crops, text = %read.text, confidence = read.confidence, "read");
            if let Some(cache) = self.cache.as_deref_mut() {
                if cache.lines.len() >= LineCache::MAX {
                    cache.lines.clear();
                }
                cache.lines.insert(key, read.text.clone());
            }
            lines.push(read.text);
        }
        Ok(Some((crop::clean(&lines.join("\n")), prepared.emoji)))
    }

    /// Reads a line known to be one line: a title, a row's preview or time, a sender.
    fn line(&mut self, line: &TextLine, fill: Rgb) -> Result<Option<String>, OcrError> {
        self.text(line, fill, crop::Shape::Line)
    }

    /// Reads centred text that may wrap onto a second line (a long system line).
    fn lines(&mut self, line: &TextLine, fill: Rgb) -> Result<Option<String>, OcrError> {
        self.text(line, fill, crop::Shape::Plain)
    }

    fn text(
        &mut self,
        line: &TextLine,
        fill: Rgb,
        shape: crop::Shape,
    ) -> Result<Option<String>, OcrError> {
        Ok(self
            .read(line.rect, fill, TextLayout::Line, shape, false)?
            .map(|(t, _)| t)
            .filter(|t| !t.is_empty()))
    }

    fn count(&mut self, cells: &segment::Cells) -> Result<Option<u32>, OcrError> {
        let rect = pad(
            self.grid.to_rect(cells),
            self.grid.px(1.0),
            self.grid.px(1.0),
        );
        Ok(self
            .read(
                rect,
                [0xFA, 0x51, 0x51],
                TextLayout::Word,
                crop::Shape::Pill,
                false,
            )?
            .and_then(|(t, _)| crop::count(&t)))
    }

    fn chat(&mut self, chat: &ChatLayout) -> Result<(ChatView, Vec<usize>), OcrError> {
        let grid = self.grid;
        let bg = chat.background;
        let title = match &chat.title {
            Some(t) => self.line(t, bg)?,
            None => None,
        };
        let back_unread = match &chat.back_badge {
            Some(b) => self.count(b)?,
            None => None,
        };
        let mut messages = Vec::new();
        let mut emoji = Vec::new();
        for block in &chat.blocks {
            // Tesseract now and then ends a short line with a comma or a full stop it did
            // not see; a name never ends with one in WeChat's sender line.
            let sender = match &block.sender {
                Some(line) => self.line(line, bg)?.map(|name| {
                    name.trim_end_matches(['，', ',', '.', '。', '、'])
                        .to_string()
                }),
                None => None,
            };
            let (kind, side, text, n) = match block.block {
                Block::Bubble { own, fill, body } => {
                    let rect = Rect {
                        left: body.left + grid.px(4.0),
                        top: body.top + grid.px(2.0),
                        right: body.right - grid.px(4.0),
                        bottom: body.bottom - grid.px(2.0),
                    };
                    let read =
                        self.read(rect, fill, TextLayout::Block, crop::Shape::Plain, true)?;
                    let (text, n) = read.unwrap_or_default();
                    (ItemKind::Text, side(own), Some(text), n)
                }
                Block::RedPacket { own, body } => {
                    // The greeting on the orange part, right of the envelope icon.
                    let rect = Rect {
                        left: body.left + (body.right - body.left) / 4,
                        top: body.top + grid.px(3.0),
                        right: body.right - grid.px(6.0),
                        bottom: body.bottom - grid.px(3.0),
                    };
                    let fill = grid
                        .img
                        .get_pixel(
                            (body.left + grid.px(12.0)) as u32,
                            (body.top + grid.px(4.0)) as u32,
                        )
                        .0;
                    let text = self
                        .read(rect, fill, TextLayout::Line, crop::Shape::Line, false)?
                        .map(|(t, _)| t)
                        .filter(|t| !t.is_empty());
                    (ItemKind::Media, side(own), text, 0)
                }
                Block::Picture { own } => (ItemKind::Media, side(own), None, 0),
                Block::Centre(line) => {
                    let text = self.lines(&line, bg)?;
                    let kind = if text.as_deref().is_some_and(looks_like_time) {
                        ItemKind::TimeDivider
                    } else {
                        ItemKind::System
                    };
                    (kind, Side::Centre, text, 0)
                }
            };
            emoji.push(n);
            messages.push(ChatItem {
                kind,
                side,
                sender,
                avatar: None,
                text,
                bounds: block.bounds,
            });
        }
        let field = grid.to_rect(&chat.field);
        let input_text = if chat.field_has_text {
            let inner = pad(field, -grid.px(6.0), -grid.px(3.0));
            self.read(
                inner,
                chat.field_colour,
                TextLayout::Line,
                crop::Shape::Plain,
                true,
            )?
            .map(|(t, _)| t)
            .unwrap_or_default()
        } else {
            String::new()
        };
        let view = ChatView {
            title,
            back_unread,
            messages,
            message_list: Some(grid.to_rect(&chat.area)),
            input: Some(InputBox {
                text: input_text,
                bounds: field,
            }),
            send_button: chat.send_button.map(|c| grid.to_rect(&c)),
            back_button: chat.back_button.map(|c| grid.to_rect(&c)),
        };
        Ok((view, emoji))
    }

    fn list(&mut self, list: &ListLayout) -> Result<ConversationList, OcrError> {
        let title = match &list.title {
            Some(t) => self.line(t, list.title_background)?,
            None => None,
        };
        let tab_unread = match &list.tab_badge {
            Some(b) => self.count(b)?,
            None => None,
        };
        let mut rows = Vec::new();
        for row in &list.rows {
            let text =
                |line: &Option<TextLine>, me: &mut Self| -> Result<Option<String>, OcrError> {
                    match line {
                        Some(l) => me.line(l, row.background),
                        None => Ok(None),
                    }
                };
            let title = text(&row.title, self)?;
            // A preview quotes the last message, emoji and all: blanked as in a bubble.
            let preview = match &row.preview {
                Some(l) => self
                    .read(
                        l.rect,
                        row.background,
                        TextLayout::Line,
                        crop::Shape::Line,
                        true,
                    )?
                    .map(|(t, _)| t)
                    .filter(|t| !t.is_empty()),
                None => None,
            };
            let time = text(&row.time, self)?;
            let unread = match (&row.badge, row.dot) {
                // A badge is a count: digits that cannot be read leave it uncounted, never
                // a dot (which the actor takes for one message).
                (Some(b), _) => self.count(b)?.map_or(Unread::Uncounted, Unread::Count),
                (None, true) => Unread::Dot,
                (None, false) => Unread::None,
            };
            rows.push(ConversationRow {
                title,
                preview,
                time,
                unread,
                muted: Some(row.muted),
                bounds: self.grid.to_rect(&row.cells),
            });
        }
        Ok(ConversationList {
            title,
            tab_unread,
            rows,
        })
    }
}

fn side(own: bool) -> Side {
    if own { Side::Right } else { Side::Left }
}

fn pad(r: Rect, dx: i32, dy: i32) -> Rect {
    Rect {
        left: r.left - dx,
        top: r.top - dy,
        right: r.right + dx,
        bottom: r.bottom + dy,
    }
}

/// A time divider's text: `09:44`, `昨天 18:30`, `星期四 09:44`, `2025年12月24日 09:44`.
pub fn looks_like_time(text: &str) -> bool {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let clock = t.char_indices().any(|(i, c)| {
        (c == ':' || c == '：')
            && t[..i].chars().last().is_some_and(|c| c.is_ascii_digit())
            && t[i + c.len_utf8()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
    });
    let words = [
        "昨天", "星期", "周", "年", "月", "日", "上午", "下午", "凌晨", "晚上", "中午",
    ];
    clock && t.chars().count() <= 20
        || (t.chars().count() <= 12
            && words.iter().any(|w| t.contains(w))
            && t.chars().any(|c| c.is_ascii_digit()))
}

/// How the screenshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// `screencap -p`: a PNG, small to move, slow to encode on the phone and to decode.
    Png,
    /// `screencap`: raw RGBA, 4 bytes a pixel, no encoding on either side.
    Raw,
}

impl Capture {
    fn command(self) -> &'static str {
        match self {
            Capture::Png => "screencap -p",
            Capture::Raw => "screencap",
        }
    }
}

/// Reads a phone's screen from screenshots with one warm OCR engine.
pub struct VisionReader {
    device: String,
    engine: Box<dyn OcrEngine>,
    capture: Capture,
    name: String,
    last: Option<Timings>,
    cache: LineCache,
    /// Keep each read's screenshot (a live view watches), and the last one kept.
    keep_frames: bool,
    frame: Option<super::Frame>,
}

impl VisionReader {
    /// A reader for `device` with `engine` (created once: loading takes a moment).
    pub fn new(device: impl Into<String>, engine: Box<dyn OcrEngine>, capture: Capture) -> Self {
        let name = format!("vision:{}", engine.name());
        VisionReader {
            device: device.into(),
            engine,
            capture,
            name,
            last: None,
            cache: LineCache::default(),
            keep_frames: false,
            frame: None,
        }
    }

    /// The timings of the last reading.
    pub fn last_timings(&self) -> Option<Timings> {
        self.last
    }
}

impl ScreenReader for VisionReader {
    /// Takes a screenshot and reads it; a screenshot cut short is taken again.
    fn read(&mut self, phone: &mut dyn Transport) -> Result<ScreenReading, ReadError> {
        const ATTEMPTS: u32 = 3;
        // A failed read leaves no frame: the last one would show an older screen.
        self.frame = None;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let started = Instant::now();
            let out = phone.shell(self.capture.command())?;
            telemetry::screenshot_taken(&self.device);
            let taken = started.elapsed();
            match read_screenshot_cached(&out.stdout, self.engine.as_mut(), Some(&mut self.cache)) {
                Ok(mut reading) => {
                    reading.timings.decode += taken;
                    tracing::debug!(
                        device = %self.device,
                        capture_ms = taken.as_secs_f64() * 1000.0,
                        segment_ms = reading.timings.segment.as_secs_f64() * 1000.0,
                        ocr_ms = reading.timings.ocr.as_secs_f64() * 1000.0,
                        crops = reading.timings.crops,
                        "screen read from a screenshot"
                    );
                    self.last = Some(reading.timings);
                    if self.keep_frames {
                        self.frame = Some(match self.capture {
                            Capture::Png => super::Frame::Png(out.stdout),
                            Capture::Raw => super::Frame::Raw(out.stdout),
                        });
                    }
                    return Ok(reading.reading);
                }
                Err(VisionError::Ocr(e)) => return Err(ReadError::Ocr(e)),
                Err(VisionError::Decode(e)) => {
                    tracing::debug!(device = %self.device, attempt, error = %e, "screenshot unreadable");
                    last = if out.stderr.is_empty() {
                        e
                    } else {
                        format!("{e} ({})", out.stderr_text().trim())
                    };
                }
            }
        }
        Err(ReadError::Screenshot {
            attempts: ATTEMPTS,
            last,
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn keep_frames(&mut self, keep: bool) {
        self.keep_frames = keep;
        if !keep {
            self.frame = None;
        }
    }

    fn take_frame(&mut self) -> Option<super::Frame> {
        self.frame.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_screencap_is_decoded_with_either_header() {
        for header in [12usize, 16] {
            let mut raw = Vec::new();
            raw.extend_from_slice(&2u32.to_le_bytes());
            raw.extend_from_slice(&1u32.to_le_bytes());
            raw.extend_from_slice(&1u32.to_le_bytes());
            if header == 16 {
                raw.extend_from_slice(&1u32.to_le_bytes());
            }
            raw.extend_from_slice(&[10, 20, 30, 255, 40, 50, 60, 255]);
            let img = decode_screenshot(&raw).expect("decoded");
            assert_eq!(img.get_pixel(1, 0).0, [40, 50, 60]);
        }
        assert!(decode_screenshot(&[1, 2, 3]).is_err());
        let mut short = Vec::new();
        for v in [100u32, 100, 1, 1] {
            short.extend_from_slice(&v.to_le_bytes());
        }
        assert!(matches!(
            decode_screenshot(&short),
            Err(VisionError::Decode(_))
        ));
    }

    #[test]
    fn time_dividers_are_told_from_system_lines() {
        for t in [
            "00:32",
            "昨天 18:30",
            "星期四 09:44",
            "2025年12月24日 09:44",
        ] {
            assert!(looks_like_time(t), "{t}");
        }
        for t in [
            "\"Bob\"撤回了一条消息",
            "王芳邀请李雷加入了群聊",
            "你已添加了Alice，现在可以开始聊天了。",
        ] {
            assert!(!looks_like_time(t), "{t}");
        }
    }
}
