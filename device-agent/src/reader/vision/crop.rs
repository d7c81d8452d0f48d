//! Turning a region of the screenshot into what an OCR engine reads best, and its answer
//! back into WeChat's text.
//!
//! A crop becomes dark text on white whatever the theme and the fill behind it (a green or
//! dark bubble, a red badge): each pixel is placed on the line from the fill colour to the
//! text colour, so anti-aliasing stays grey levels. Emoji, which no OCR model reads, are
//! blanked out (they are colours far off that line) and counted. The crop is cut to its ink,
//! scaled so that its text is as high as the engine wants, and given a white margin.

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};

use super::segment::{Rgb, lum};
use crate::dump::Rect;

/// A crop ready for the engine.
pub struct Prepared {
    /// Its lines of text, top to bottom, each ready for the engine.
    pub lines: Vec<GrayImage>,
    /// Emoji blanked out of it.
    pub emoji: usize,
}

/// Ink darker than this (0 black, 255 white) counts as text when tightening the crop.
const INK: u8 = 170;

/// How a crop is cut out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Text on a fill that covers the whole rectangle, in as many lines as it holds.
    Plain,
    /// One line of text (a row's title or preview, a sender's name): never cut into
    /// lines, as a line of CJK glyphs may have a row without ink across its whole width
    /// (`元宝`: between 宀 and 玉, and below 元's top strokes).
    Line,
    /// Text on a fill that may not reach the corners (a round badge): what lies outside the
    /// fill's span on each row is not text.
    Pill,
}

pub fn prepare(
    img: &RgbImage,
    rect: Rect,
    fill: Rgb,
    glyph_px: u32,
    mask_emoji: bool,
    shape: Shape,
) -> Option<Prepared> {
    let left = rect.left.max(0) as u32;
    let top = rect.top.max(0) as u32;
    let right = (rect.right.max(0) as u32).min(img.width());
    let bottom = (rect.bottom.max(0) as u32).min(img.height());
    if right <= left + 2 || bottom <= top + 2 {
        return None;
    }
    let (w, h) = (right - left, bottom - top);
    let mut source = imageops::crop_imm(img, left, top, w, h).to_image();
    if shape == Shape::Pill {
        // What can be reached from the crop's edge without crossing the fill lies outside
        // the badge; the digits inside are ringed by fill. (Keeping each row's span between
        // its first and last fill pixel instead cut the strokes that come near the round
        // ends: a lone 7's bar, the 2 of 219.)
        let is_fill = |p: &image::Rgb<u8>| p.0.iter().zip(fill).all(|(a, b)| a.abs_diff(b) <= 40);
        let mut outside = vec![false; (w * h) as usize];
        let mut todo: Vec<(u32, u32)> = Vec::new();
        for x in 0..w {
            todo.push((x, 0));
            todo.push((x, h - 1));
        }
        for y in 0..h {
            todo.push((0, y));
            todo.push((w - 1, y));
        }
        while let Some((x, y)) = todo.pop() {
            let at = (y * w + x) as usize;
            if outside[at] || is_fill(source.get_pixel(x, y)) {
                continue;
            }
            outside[at] = true;
            if x > 0 {
                todo.push((x - 1, y));
            }
            if x + 1 < w {
                todo.push((x + 1, y));
            }
            if y > 0 {
                todo.push((x, y - 1));
            }
            if y + 1 < h {
                todo.push((x, y + 1));
            }
        }
        for y in 0..h {
            for x in 0..w {
                if outside[(y * w + x) as usize] {
                    source.put_pixel(x, y, image::Rgb(fill));
                }
            }
        }
    }
    let (img, left, right, top, bottom) = (&source, 0, w, 0, h);
    // The text colour: the pixel furthest in brightness from the fill.
    let lf = lum(fill);
    let mut text = fill;
    let mut best = 0.0f32;
    for y in top..bottom {
        for x in left..right {
            let p = img.get_pixel(x, y).0;
            let d = (lum(p) - lf).abs();
            if d > best {
                best = d;
                text = p;
            }
        }
    }
    if best < 25.0 {
        return None;
    }
    let axis = [
        f32::from(text[0]) - f32::from(fill[0]),
        f32::from(text[1]) - f32::from(fill[1]),
        f32::from(text[2]) - f32::from(fill[2]),
    ];
    let norm2 = axis.iter().map(|a| a * a).sum::<f32>().max(1.0);
    let mut gray = GrayImage::new(w, h);
    let mut odd = GrayImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(left + x, top + y).0;
            let d = [
                f32::from(p[0]) - f32::from(fill[0]),
                f32::from(p[1]) - f32::from(fill[1]),
                f32::from(p[2]) - f32::from(fill[2]),
            ];
            let t = ((d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2]) / norm2).clamp(0.0, 1.0);
            let residual2: f32 = (0..3).map(|k| (d[k] - t * axis[k]).powi(2)).sum();
            gray.put_pixel(x, y, Luma([(255.0 * (1.0 - t)).round() as u8]));
            if residual2 > 45.0 * 45.0 {
                odd.put_pixel(x, y, Luma([255]));
            }
        }
    }
    let mut emoji = 0;
    if mask_emoji {
        emoji = blank_emoji(&mut gray, &odd);
    }
    Some(Prepared {
        lines: split_lines(&gray, glyph_px, shape == Shape::Line),
        emoji,
    })
}

/// Cuts a normalised crop into its lines of text (bands of inked rows), each tightened to
/// its ink, scaled so that the tallest line is `glyph_px` high, with a white margin.
/// Engines read one line at a time more reliably than a block (tesseract drops whole short
/// blocks now and then), and the reader knows where lines are better than they do.
fn split_lines(gray: &GrayImage, glyph_px: u32, one_line: bool) -> Vec<GrayImage> {
    let (w, h) = gray.dimensions();
    let inked: Vec<bool> = (0..h)
        .map(|y| (0..w).any(|x| gray.get_pixel(x, y).0[0] < INK))
        .collect();
    let mut bands: Vec<(u32, u32)> = Vec::new();
    for (y, &ink) in inked.iter().enumerate() {
        let y = y as u32;
        if !ink {
            continue;
        }
        match bands.last_mut() {
            Some(b) if b.1 == y => b.1 = y + 1,
            _ => bands.push((y, y + 1)),
        }
    }
    let Some(tallest) = bands.iter().map(|b| b.1 - b.0).max() else {
        return Vec::new();
    };
    if one_line && let (Some(first), Some(last)) = (bands.first(), bands.last()) {
        bands = vec![(first.0, last.1)];
    }
    // A thin band (a stroke of `一`, a dot of `i` apart from its stem) belongs to the
    // nearest full line when it is close to it.
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for b in bands {
        let thin = (b.1 - b.0) * 3 < tallest;
        match merged.last_mut() {
            Some(prev)
                if b.0 - prev.1 < tallest / 3 && (thin || (prev.1 - prev.0) * 3 < tallest) =>
            {
                prev.1 = b.1;
            }
            _ => merged.push(b),
        }
    }
    let tallest = merged.iter().map(|b| b.1 - b.0).max().unwrap_or(1);
    let scale = (glyph_px as f32 / tallest as f32).clamp(0.25, 3.0);
    merged
        .into_iter()
        .filter_map(|(y0, y1)| {
            let xs: Vec<u32> = (0..w)
                .filter(|&x| (y0..y1).any(|y| gray.get_pixel(x, y).0[0] < INK))
                .collect();
            let (x0, x1) = (*xs.first()?, *xs.last()? + 1);
            let pad = 2;
            let (cx0, cy0) = (x0.saturating_sub(pad), y0.saturating_sub(pad));
            let (cx1, cy1) = ((x1 + pad).min(w), (y1 + pad).min(h));
            let cut = imageops::crop_imm(gray, cx0, cy0, cx1 - cx0, cy1 - cy0).to_image();
            let (sw, sh) = (
                ((cut.width() as f32 * scale).round() as u32).max(1),
                ((cut.height() as f32 * scale).round() as u32).max(1),
            );
            let scaled = if (scale - 1.0).abs() < 0.05 {
                cut
            } else {
                imageops::resize(&cut, sw, sh, FilterType::Triangle)
            };
            let margin = 10;
            let mut out = GrayImage::from_pixel(
                scaled.width() + 2 * margin,
                scaled.height() + 2 * margin,
                Luma([255]),
            );
            imageops::replace(&mut out, &scaled, i64::from(margin), i64::from(margin));
            Some(out)
        })
        .collect()
}

/// Blanks each blob of off-axis colour at least a few pixels across (an emoji) with its
/// box, eyes and all; returns how many there were.
fn blank_emoji(gray: &mut GrayImage, odd: &GrayImage) -> usize {
    use imageproc::region_labelling::{Connectivity, connected_components};
    let labels = connected_components(odd, Connectivity::Eight, Luma([0u8]));
    let mut boxes: std::collections::HashMap<u32, (u32, u32, u32, u32, u32)> =
        std::collections::HashMap::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l.0[0];
        if l == 0 {
            continue;
        }
        let b = boxes.entry(l).or_insert((x, y, x + 1, y + 1, 0));
        b.0 = b.0.min(x);
        b.1 = b.1.min(y);
        b.2 = b.2.max(x + 1);
        b.3 = b.3.max(y + 1);
        b.4 += 1;
    }
    let mut n = 0;
    for (x0, y0, x1, y1, count) in boxes.into_values() {
        let (bw, bh) = (x1 - x0, y1 - y0);
        if bw < 6 || bh < 6 || (count as f32) < 0.4 * (bw * bh) as f32 {
            continue;
        }
        n += 1;
        let (mx, my) = (bw / 6 + 1, bh / 6 + 1);
        for y in y0.saturating_sub(my)..(y1 + my).min(gray.height()) {
            for x in x0.saturating_sub(mx)..(x1 + mx).min(gray.width()) {
                gray.put_pixel(x, y, Luma([255]));
            }
        }
    }
    n
}

/// Whether `c` is written without spaces around it: CJK and full-width forms.
fn is_wide(c: char) -> bool {
    !c.is_ascii() && !c.is_whitespace()
}

/// The engine's text as WeChat showed it: lines of one paragraph joined (a line break
/// between two Latin words was a space), spaces the engine put between CJK glyphs dropped.
pub fn clean(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut joined = String::new();
    for line in lines {
        if let (Some(a), Some(b)) = (joined.chars().last(), line.chars().next())
            && !is_wide(a)
            && !is_wide(b)
        {
            joined.push(' ');
        }
        joined.push_str(line);
    }
    let chars: Vec<char> = joined.chars().collect();
    let mut out = String::with_capacity(joined.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let before = chars[..i].iter().rev().find(|c| **c != ' ');
            let after = chars[i + 1..].iter().find(|c| **c != ' ');
            let wide_side =
                before.is_some_and(|c| is_wide(*c)) || after.is_some_and(|c| is_wide(*c));
            if wide_side || out.ends_with(' ') {
                continue;
            }
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// A badge's count from what the engine read: its digits (`99+` reads as 99).
pub fn count(raw: &str) -> Option<u32> {
    let digits: String = raw
        .chars()
        .map(|c| match c {
            'O' | 'o' => '0',
            'l' | 'I' | '|' => '1',
            c => c,
        })
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_joins_lines_and_drops_spaces_between_cjk() {
        assert_eq!(clean("这 是 一 条\n很 长 的 消息\n"), "这是一条很长的消息");
        assert_eq!(
            clean("A long line to\nwrap: 这是"),
            "A long line to wrap:这是"
        );
        assert_eq!(clean("OK,  I'll send"), "OK, I'll send");
    }

    #[test]
    fn counts_read_badges() {
        assert_eq!(count("12"), Some(12));
        assert_eq!(count("99+"), Some(99));
        assert_eq!(count("l0"), Some(10));
        assert_eq!(count("…"), None);
    }
}
