//! Real glyphs for screenshots: a CJK font found on the machine, loaded once per process, and
//! a line of text laid out in it and fitted into the width the layout gave that line.
//!
//! Where the font comes from: `TAPWIRE_SIM_FONT` (a .ttf, .otf or .ttc; `none` for no font,
//! as on a machine without one), else the first of a
//! few system paths: Debian's `fonts-noto-cjk` (which `scripts/setup` installs), the other
//! distributions' Noto CJK, WenQuanYi, and macOS's PingFang or Heiti. In a collection (.ttc)
//! the Simplified Chinese face is picked by its name. With no font at all, screenshots fall
//! back to one bar per line of text and a log line says so.
//!
//! Emoji: the colour emoji font (Noto Color Emoji) is a bitmap (CBDT) font that ab_glyph
//! cannot draw, so an emoji is drawn as its own small rounded square, coloured by its code
//! point, one em wide: what a reader needs is that an emoji takes a glyph's place and is not
//! text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font as _, FontArc, FontVec, GlyphId, PxScale, ScaleFont, point};

use super::canvas::Canvas;

pub const FONT_ENV: &str = "TAPWIRE_SIM_FONT";

const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
];

pub struct Font {
    face: FontArc,
    pub path: PathBuf,
    /// Pixel scale per pixel of em: ab_glyph scales by ascent-to-descent height, WeChat's
    /// sizes are ems.
    em_to_scale: f32,
}

/// The process's font, looked for once.
pub fn system_font() -> Option<&'static Font> {
    static FONT: OnceLock<Option<Font>> = OnceLock::new();
    FONT.get_or_init(|| {
        let found = find();
        match &found {
            Some(f) => tracing::info!(path = %f.path.display(), "screenshots draw text with this font"),
            None => tracing::warn!(
                env = FONT_ENV,
                "no CJK font found (Debian: apt-get install fonts-noto-cjk); screenshots draw text as bars"
            ),
        }
        found
    })
    .as_ref()
}

fn find() -> Option<Font> {
    if let Some(p) = std::env::var_os(FONT_ENV) {
        if p == "none" {
            return None;
        }
        let p = PathBuf::from(p);
        match Font::load(&p) {
            Some(f) => return Some(f),
            None => tracing::warn!(path = %p.display(), env = FONT_ENV, "not a usable font"),
        }
    }
    CANDIDATES
        .iter()
        .map(Path::new)
        .filter(|p| p.exists())
        .find_map(Font::load)
}

impl Font {
    pub fn load(path: &Path) -> Option<Font> {
        let data = std::fs::read(path).ok()?;
        let index = simplified_chinese_face(&data).unwrap_or(0);
        let face = FontVec::try_from_vec_and_index(data, index).ok()?;
        let upem = face.units_per_em()?;
        let em_to_scale = face.height_unscaled() / upem;
        Some(Font {
            face: FontArc::new(face),
            path: path.to_path_buf(),
            em_to_scale,
        })
    }

    fn scale(&self, em: f32) -> PxScale {
        PxScale::from(em * self.em_to_scale)
    }

    /// How a character is drawn.
    fn kind(&self, c: char) -> Glyph {
        if crate::wechat::ui::is_zero_width(c) {
            return Glyph::None;
        }
        let id = self.face.glyph_id(c);
        if is_emoji(c) || (id.0 == 0 && ('\u{2000}'..='\u{2BFF}').contains(&c)) {
            Glyph::Emoji
        } else if id.0 == 0 && !c.is_whitespace() {
            Glyph::Missing
        } else {
            Glyph::Outline(id)
        }
    }

    /// The natural width of `line` at `em` pixels per em.
    pub fn measure(&self, line: &str, em: f32) -> f32 {
        let scaled = self.face.as_scaled(self.scale(em));
        let mut w = 0.0;
        let mut prev: Option<GlyphId> = None;
        for c in line.chars() {
            match self.kind(c) {
                Glyph::None => {}
                Glyph::Emoji => {
                    w += em;
                    prev = None;
                }
                Glyph::Missing => {
                    w += if c.is_ascii() { em / 2.0 } else { em };
                    prev = None;
                }
                Glyph::Outline(id) => {
                    if let Some(p) = prev {
                        w += scaled.kern(p, id);
                    }
                    w += scaled.h_advance(id);
                    prev = Some(id);
                }
            }
        }
        w
    }

    /// Draws `line` with its left end at `x`, in a line box from `top` `line_h` high, squeezed
    /// sideways by `squeeze` (≤ 1) so that it fits the width the layout gave it.
    #[allow(clippy::too_many_arguments)]
    pub fn draw_line(
        &self,
        canvas: &mut Canvas,
        line: &str,
        (x, top): (f32, f32),
        line_h: f32,
        em: f32,
        squeeze: f32,
        color: u32,
    ) {
        let scale = self.scale(em);
        let scaled = self.face.as_scaled(scale);
        let (ascent, descent) = (scaled.ascent(), scaled.descent());
        let baseline = top + (line_h - (ascent - descent)) / 2.0 + ascent;
        let squeezed = PxScale {
            x: scale.x * squeeze,
            y: scale.y,
        };
        let mut pen = x;
        let mut prev: Option<GlyphId> = None;
        for c in line.chars() {
            match self.kind(c) {
                Glyph::None => {}
                Glyph::Emoji => {
                    draw_emoji(canvas, c, pen, baseline, em, squeeze);
                    pen += em * squeeze;
                    prev = None;
                }
                Glyph::Missing => {
                    let w = if c.is_ascii() { em / 2.0 } else { em } * squeeze;
                    let (l, t) = (pen + w * 0.15, baseline - em * 0.75);
                    let (r, b) = (pen + w * 0.85, baseline);
                    let stroke = (em / 16.0).max(1.0);
                    for (a, z) in [
                        ((l, t), (r, t)),
                        ((r, t), (r, b)),
                        ((r, b), (l, b)),
                        ((l, b), (l, t)),
                    ] {
                        canvas.stroke(a, z, stroke, color);
                    }
                    pen += w;
                    prev = None;
                }
                Glyph::Outline(id) => {
                    if let Some(p) = prev {
                        pen += scaled.kern(p, id) * squeeze;
                    }
                    let glyph = id.with_scale_and_position(squeezed, point(pen, baseline));
                    if let Some(outline) = self.face.outline_glyph(glyph) {
                        let b = outline.px_bounds();
                        let (bx, by) = (b.min.x.floor() as i32, b.min.y.floor() as i32);
                        outline.draw(|gx, gy, coverage| {
                            canvas.blend(bx + gx as i32, by + gy as i32, color, coverage);
                        });
                    }
                    pen += scaled.h_advance(id) * squeeze;
                    prev = Some(id);
                }
            }
        }
    }
}

enum Glyph {
    /// Joins or modifies the character before; takes no room.
    None,
    Emoji,
    /// Not in the font: an empty box, as Android draws it.
    Missing,
    Outline(GlyphId),
}

/// The pictographic planes: emoticons, symbols and pictographs, transport, flags' regional
/// indicators, the supplemental symbols.
fn is_emoji(c: char) -> bool {
    ('\u{1F000}'..='\u{1FAFF}').contains(&c)
}

fn draw_emoji(canvas: &mut Canvas, c: char, pen: f32, baseline: f32, em: f32, squeeze: f32) {
    // Warm and cool tones, none of them a bubble's green, white or the badges' red.
    const TONES: [u32; 6] = [0xF5C33B, 0xF08A3C, 0xE86AA6, 0x4FA3E0, 0x9B7FE6, 0x35B8A6];
    let tone = TONES[(c as u32 % TONES.len() as u32) as usize];
    let side = em * 0.86;
    let w = side * squeeze;
    let (l, t) = (pen + (em * squeeze - w) / 2.0, baseline - em * 0.8);
    let r = crate::wechat::ui::rect(
        l.round() as i32,
        t.round() as i32,
        (l + w).round() as i32,
        (t + side).round() as i32,
    );
    canvas.fill_rounded(r, side * 0.25, tone);
    // Two eyes: an emoji reads as a face at a glance, and as nothing a text reader knows.
    let eye = (side * 0.08).max(1.0);
    for dx in [0.33, 0.67] {
        canvas.fill_circle(l + w * dx, t + side * 0.4, eye, 0x3A2A10);
    }
}

/// In a font collection, the index of the face whose family names Simplified Chinese (`SC`,
/// `GB`), preferring a regular weight; `None` for a single font or when no face says so.
fn simplified_chinese_face(data: &[u8]) -> Option<u32> {
    if data.get(0..4)? != b"ttcf" {
        return None;
    }
    let n = be_u32(data, 8)?;
    let mut best: Option<(u32, bool)> = None;
    for i in 0..n.min(64) {
        let offset = be_u32(data, 12 + 4 * i as usize)? as usize;
        let family = face_name(data, offset, 1).unwrap_or_default();
        let style = face_name(data, offset, 2).unwrap_or_default();
        let sc = family.split_whitespace().any(|w| w == "SC" || w == "GB")
            || family.ends_with(" SC")
            || family.contains("Simplified");
        // Monospaced CJK faces have half-width Latin that does not look like WeChat's.
        if sc && !family.contains("Mono") {
            let regular = style == "Regular";
            if best.is_none_or(|(_, r)| regular && !r) {
                best = Some((i, regular));
            }
        }
    }
    best.map(|(i, _)| i)
}

fn be_u16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Name `name_id` (1 family, 2 subfamily) of the font whose table directory is at `offset`,
/// from its `name` table (OpenType spec, "name — Naming Table"): Windows-platform UTF-16BE
/// names first, then Macintosh Roman ones as ASCII.
fn face_name(d: &[u8], offset: usize, name_id: u16) -> Option<String> {
    let tables = be_u16(d, offset + 4)? as usize;
    let name = (0..tables).find_map(|t| {
        let rec = offset + 12 + 16 * t;
        (d.get(rec..rec + 4)? == b"name").then(|| be_u32(d, rec + 8))?
    })? as usize;
    let count = be_u16(d, name + 2)? as usize;
    let strings = name + be_u16(d, name + 4)? as usize;
    let mut mac = None;
    for r in 0..count {
        let rec = name + 6 + 12 * r;
        let (platform, id) = (be_u16(d, rec)?, be_u16(d, rec + 6)?);
        if id != name_id {
            continue;
        }
        let (len, at) = (be_u16(d, rec + 8)? as usize, be_u16(d, rec + 10)? as usize);
        let bytes = d.get(strings + at..strings + at + len)?;
        match platform {
            3 => {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]))
                    .collect();
                return String::from_utf16(&units).ok();
            }
            1 if mac.is_none() => mac = Some(bytes.iter().map(|&b| char::from(b)).collect()),
            _ => {}
        }
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simplified_chinese_face_is_picked_from_a_collection() {
        let path = Path::new(CANDIDATES[0]);
        let Ok(data) = std::fs::read(path) else {
            return; // Without Debian's Noto CJK there is no collection to read.
        };
        let index = simplified_chinese_face(&data).expect("an SC face");
        let offset = be_u32(&data, 12 + 4 * index as usize).expect("offset") as usize;
        assert_eq!(
            face_name(&data, offset, 1).as_deref(),
            Some("Noto Sans CJK SC")
        );
        assert_eq!(simplified_chinese_face(b"not a font"), None);
    }
}
