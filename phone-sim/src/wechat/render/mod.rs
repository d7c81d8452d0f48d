//! Screenshots: paints the same view tree the dumps come from, each node at its dump bounds, so
//! a box drawn from a dump lands on what the picture shows.
//!
//! - `canvas`: the pixel buffer and its shapes.
//! - `font`: the CJK font, found once per process, and lines of text drawn with it (bars when
//!   the machine has no font).
//! - `palette`: WeChat's light and dark colours.
//!
//! Text is laid out exactly as the dump's bounds were: the lines `ui::wrap` makes, each given
//! its width in units times the type size. The real glyphs are drawn at that size and, where a
//! line's glyphs come out wider than the layout's estimate, squeezed sideways to fit, so that
//! glyphs never leave the bounds a dump reports.
//!
//! A screenshot is drawn once per change of the tree (or screen, or theme) and kept, with its
//! PNG and raw encodings made on first use ([`ScreenshotCache`]).

mod canvas;
mod font;
mod palette;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

pub use font::{FONT_ENV, Font, system_font};

use self::canvas::Canvas;
use self::palette::Palette;
use super::ui::{
    Align, BODY_SIZE, BUBBLE_PAD_H, BUBBLE_PAD_V, BUBBLE_TAIL_W, BUBBLE_TAIL_Y, Icon, Ink, LINE_H,
    MESSAGE_LINE_UNITS, Node, Paint, RED_PACKET_BODY_H, Rect, SYSTEMUI_PKG, TIME_SIZE, TextSize,
    TextStyle, UPSLIDE_PKG, bubble_text_left, rect, width_in_units, wrap,
};
use crate::display::{Screen, Theme};

#[derive(Debug, Clone, thiserror::Error)]
#[error("PNG encoding failed: {0}")]
pub struct RenderError(String);

/// One drawn screen.
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    /// RGB, row by row.
    pub rgb: Vec<u8>,
    png: OnceLock<Result<Vec<u8>, RenderError>>,
    raw: OnceLock<Vec<u8>>,
}

impl Screenshot {
    fn new(canvas: Canvas) -> Self {
        Screenshot {
            width: canvas.width.max(0) as u32,
            height: canvas.height.max(0) as u32,
            rgb: canvas.px,
            png: OnceLock::new(),
            raw: OnceLock::new(),
        }
    }

    /// `screencap -p`: a PNG.
    pub fn png(&self) -> Result<&[u8], RenderError> {
        self.png
            .get_or_init(|| {
                let mut out = Vec::with_capacity(256 * 1024);
                // Fast compression: a screenshot is taken often and crosses only a loopback.
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
                    .write_image(&self.rgb, self.width, self.height, ExtendedColorType::Rgb8)
                    .map_err(|e| RenderError(e.to_string()))?;
                Ok(out)
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// `screencap` without `-p`, as AOSP's `cmds/screencap/screencap.cpp` writes it: width,
    /// height, pixel format (1 = RGBA_8888) and, from Android 9 on, the colour space (1 =
    /// sRGB), each a little-endian u32, then the rows without stride padding.
    pub fn raw(&self) -> &[u8] {
        self.raw.get_or_init(|| {
            let mut out = Vec::with_capacity(16 + self.rgb.len() / 3 * 4);
            for v in [self.width, self.height, 1, 1] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for p in self.rgb.chunks_exact(3) {
                out.extend_from_slice(&[p[0], p[1], p[2], 0xFF]);
            }
            out
        })
    }
}

/// The last screenshot and what it showed.
#[derive(Default)]
pub struct ScreenshotCache(Mutex<Option<(u64, Arc<Screenshot>)>>);

impl ScreenshotCache {
    /// The screenshot of `windows`, drawn now only if they changed since the last call.
    pub fn get(&self, windows: &[Node], screen: Screen, theme: Theme) -> Arc<Screenshot> {
        let mut h = DefaultHasher::new();
        (windows, screen, theme).hash(&mut h);
        let key = h.finish();
        let mut cached = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, shot)) = cached.as_ref()
            && *k == key
        {
            return shot.clone();
        }
        let started = Instant::now();
        let shot = Arc::new(Screenshot::new(render(
            windows,
            screen,
            theme,
            system_font(),
        )));
        tracing::debug!(
            ms = started.elapsed().as_secs_f64() * 1000.0,
            %screen,
            ?theme,
            "screenshot drawn"
        );
        *cached = Some((key, shot.clone()));
        shot
    }
}

/// Draws `windows` (in `screen`'s pixels) with `font`, or with bars for text when it is
/// `None`, without the cache: what a test of the fallback needs.
pub fn render_screenshot(
    windows: &[Node],
    screen: Screen,
    theme: Theme,
    font: Option<&Font>,
) -> Screenshot {
    Screenshot::new(render(windows, screen, theme, font))
}

/// Draws `windows` (in `screen`'s pixels): the apps first, then the system's windows over them.
fn render(windows: &[Node], screen: Screen, theme: Theme, font: Option<&Font>) -> Canvas {
    let mut painter = Painter {
        canvas: Canvas::new(screen.width, screen.height, 0x000000),
        font,
        palette: Palette { theme },
        scale: screen.scale(),
    };
    let is_system = |w: &&Node| w.package == SYSTEMUI_PKG || w.package == UPSLIDE_PKG;
    for w in windows
        .iter()
        .filter(|w| !is_system(w))
        .chain(windows.iter().filter(is_system))
    {
        painter.paint(w);
    }
    painter.canvas
}

struct Painter<'a> {
    canvas: Canvas,
    font: Option<&'a Font>,
    palette: Palette,
    /// Screen pixels per layout pixel: type sizes and paddings are in layout pixels.
    scale: f32,
}

impl Painter<'_> {
    fn px(&self, layout: i32) -> f32 {
        layout as f32 * self.scale
    }

    fn paint(&mut self, node: &Node) {
        // A node cut by a scrolled list is drawn whole and cut at its visible part.
        let r = node.unclipped.unwrap_or(node.bounds);
        self.canvas.set_clip(node.bounds);
        match node.paint {
            Paint::None => {}
            Paint::Fill(ink) => self.canvas.fill(r, self.palette.ink(ink)),
            Paint::Text(style) => self.label(node, r, style),
            Paint::Bubble { own } => self.bubble(node, r, own),
            Paint::Field => self.field(node, r),
            Paint::Button => self.button(node, r),
            Paint::Image => self.picture(r),
            Paint::Sticker => self.sticker(r),
            Paint::RedPacket { own } => self.red_packet(r, own),
            Paint::Avatar(colour) => self.avatar(r, colour),
            Paint::Icon(icon) => self.icon(r, icon),
            Paint::Badge => self.badge(node, r),
            Paint::Dot => {
                let d = r.width().min(r.height()) as f32;
                let (cx, cy) = centre(r);
                self.canvas.fill_circle(cx, cy, d / 2.0, self.palette.red());
            }
        }
        for c in &node.children {
            self.paint(c);
        }
    }

    /// One line of text in the box `(x, w)` from `top`, `line_h` high. `units` is the width
    /// the layout measured for it; the glyphs are squeezed only when wider than `w`.
    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        text: &str,
        (x, w): (f32, f32),
        top: f32,
        line_h: f32,
        size: TextSize,
        align: Align,
        color: u32,
    ) {
        let em = self.px(size.unit_px * 2);
        let Some(font) = self.font else {
            // No font: one bar per line, as wide as the layout measured it.
            let bar_w = (width_in_units(text) as f32 * self.px(size.unit_px)).min(w);
            if bar_w > 0.0 {
                let left = aligned(x, w, bar_w, align);
                let t = top + line_h / 4.0;
                self.canvas.fill(
                    rect(
                        left.round() as i32,
                        t.round() as i32,
                        (left + bar_w).round() as i32,
                        (t + line_h / 2.0).round() as i32,
                    ),
                    color,
                );
            }
            return;
        };
        let natural = font.measure(text, em);
        if natural <= 0.0 {
            return;
        }
        let fitted = natural.min(w);
        let left = aligned(x, w, fitted, align);
        font.draw_line(
            &mut self.canvas,
            text,
            (left, top),
            line_h,
            em,
            fitted / natural,
            color,
        );
    }

    /// A label: its lines centred vertically in its bounds.
    fn label(&mut self, node: &Node, r: Rect, style: TextStyle) {
        let text = if node.text.is_empty() {
            &node.screen_text
        } else {
            &node.text
        };
        if text.is_empty() {
            return;
        }
        let lines: Vec<String> = if style.wrap > 0 {
            wrap(text, style.wrap)
        } else {
            text.split('\n').map(str::to_string).collect()
        };
        let line_h = self.px(style.size.line_h);
        let total = line_h * lines.len() as f32;
        let mut top = r.top as f32 + (r.height() as f32 - total) / 2.0;
        let color = self.palette.ink(style.ink);
        for line in &lines {
            self.line(
                line,
                (r.left as f32, r.width() as f32),
                top,
                line_h,
                style.size,
                style.align,
                color,
            );
            top += line_h;
        }
    }

    /// The bubble's body (the bounds less the tail) and the tail toward the avatar.
    fn bubble_shape(&mut self, r: Rect, own: bool, color: u32) -> Rect {
        let tail = self.px(BUBBLE_TAIL_W).round() as i32;
        let body = if own {
            Rect {
                right: r.right - tail,
                ..r
            }
        } else {
            Rect {
                left: r.left + tail,
                ..r
            }
        };
        self.canvas.fill_rounded(body, self.px(8), color);
        let ty = r.top as f32 + self.px(BUBBLE_TAIL_Y);
        let half = self.px(9);
        let (tip, base) = if own {
            (r.right as f32, body.right as f32 - 1.0)
        } else {
            (r.left as f32, body.left as f32 + 1.0)
        };
        self.canvas
            .fill_triangle([(tip, ty), (base, ty - half), (base, ty + half)], color);
        body
    }

    fn bubble(&mut self, node: &Node, r: Rect, own: bool) {
        self.bubble_shape(r, own, self.palette.bubble(own));
        // `r` is in screen pixels; the text's offset in the bubble is in layout pixels.
        let text_left = r.left as f32 + self.px(bubble_text_left(&rect(0, 0, 0, 0), own));
        let text_w = r.width() as f32 - self.px(BUBBLE_PAD_H);
        let line_h = self.px(LINE_H);
        let mut top = r.top as f32 + self.px(BUBBLE_PAD_V / 2);
        let color = self.palette.bubble_text(own);
        for line in wrap(&node.text, MESSAGE_LINE_UNITS) {
            self.line(
                &line,
                (text_left, text_w),
                top,
                line_h,
                BODY_SIZE,
                Align::Left,
                color,
            );
            top += line_h;
        }
    }

    fn field(&mut self, node: &Node, r: Rect) {
        let inset = self.px(4).round() as i32;
        let field = Rect {
            top: r.top + inset,
            bottom: r.bottom - inset,
            ..r
        };
        self.canvas
            .fill_rounded(field, self.px(8), self.palette.field());
        // The field shows its last line, scrolled to its end.
        let Some(last) = node.text.lines().last() else {
            return;
        };
        let pad = self.px(16);
        self.line(
            last,
            (r.left as f32 + pad, r.width() as f32 - 2.0 * pad),
            r.top as f32,
            r.height() as f32,
            BODY_SIZE,
            Align::Left,
            self.palette.ink(Ink::Text),
        );
    }

    fn button(&mut self, node: &Node, r: Rect) {
        self.canvas
            .fill_rounded(r, self.px(8), self.palette.ink(Ink::Brand));
        self.line(
            &node.text,
            (r.left as f32, r.width() as f32),
            r.top as f32,
            r.height() as f32,
            BODY_SIZE,
            Align::Centre,
            0xFFFFFF,
        );
    }

    fn picture(&mut self, r: Rect) {
        let (top, bottom) = self.palette.picture();
        let radius = self.px(8);
        // Rounded ends in the gradient's end colours, the gradient between them, a pale sun
        // and a darker hill: a blurred photo's look, not text and not a bubble.
        let mid = (r.top + r.bottom) / 2;
        self.canvas
            .fill_rounded(Rect { bottom: mid, ..r }, radius, top);
        self.canvas
            .fill_rounded(Rect { top: mid, ..r }, radius, bottom);
        let h = r.height().max(1);
        let k = radius.ceil() as i32;
        for y in r.top + k..r.bottom - k {
            let t = (y - r.top) as f32 / h as f32;
            self.canvas
                .fill(rect(r.left, y, r.right, y + 1), mix(top, bottom, t));
        }
        let (w, hf) = (r.width() as f32, h as f32);
        self.canvas.fill_circle(
            r.left as f32 + w * 0.7,
            r.top as f32 + hf * 0.3,
            w * 0.12,
            mix(top, 0xFFFFFF, 0.5),
        );
        self.canvas.fill_circle(
            r.left as f32 + w * 0.3,
            r.bottom as f32 + hf * 0.25,
            w * 0.55,
            mix(bottom, 0x000000, 0.25),
        );
    }

    fn sticker(&mut self, r: Rect) {
        let (cx, cy) = centre(r);
        let radius = r.width().min(r.height()) as f32 * 0.42;
        self.canvas.fill_circle(cx, cy, radius, 0xF5C33B);
        let eye = radius * 0.12;
        for dx in [-0.35, 0.35] {
            self.canvas
                .fill_circle(cx + radius * dx, cy - radius * 0.2, eye, 0x3A2A10);
        }
        self.canvas.stroke(
            (cx - radius * 0.35, cy + radius * 0.3),
            (cx + radius * 0.35, cy + radius * 0.3),
            eye,
            0x3A2A10,
        );
    }

    fn red_packet(&mut self, r: Rect, own: bool) {
        let orange = self.palette.red_packet();
        let body = self.bubble_shape(r, own, orange);
        // The footer under the orange part, where `微信红包` is written.
        let footer_top = r.top + self.px(RED_PACKET_BODY_H).round() as i32;
        let radius = self.px(8);
        self.canvas.fill_rounded(
            Rect {
                top: footer_top,
                ..body
            },
            radius,
            self.palette.red_packet_footer(),
        );
        self.canvas.fill(
            Rect {
                top: footer_top,
                bottom: footer_top + radius.ceil() as i32,
                ..body
            },
            self.palette.red_packet_footer(),
        );
        // The red envelope icon with its gold seal.
        let (l, t) = (body.left as f32 + self.px(24), r.top as f32 + self.px(26));
        let (w, h) = (self.px(56), self.px(70));
        self.canvas.fill_rounded(
            rect(
                l.round() as i32,
                t.round() as i32,
                (l + w).round() as i32,
                (t + h).round() as i32,
            ),
            self.px(6),
            0xE9543A,
        );
        self.canvas
            .fill_circle(l + w / 2.0, t + h * 0.42, w * 0.22, 0xFFD36E);
    }

    fn avatar(&mut self, r: Rect, colour: u32) {
        self.canvas.fill_rounded(r, self.px(8), colour);
        // A head and shoulders in a lighter tone, as a default avatar shows.
        let light = mix(colour, 0xFFFFFF, 0.45);
        let (cx, _) = centre(r);
        let (w, h) = (r.width() as f32, r.height() as f32);
        self.canvas
            .fill_circle(cx, r.top as f32 + h * 0.4, w * 0.18, light);
        self.canvas
            .fill_circle(cx, r.bottom as f32 + h * 0.12, w * 0.34, light);
    }

    fn icon(&mut self, r: Rect, icon: Icon) {
        let c = self.palette.icon();
        let (cx, cy) = centre(r);
        let size = r.width().min(r.height()) as f32;
        let line = (size * 0.07).max(1.5);
        let rad = size * 0.3;
        match icon {
            Icon::Back => {
                let d = size * 0.16;
                self.canvas
                    .stroke((cx + d * 0.5, cy - d), (cx - d * 0.5, cy), line, c);
                self.canvas
                    .stroke((cx - d * 0.5, cy), (cx + d * 0.5, cy + d), line, c);
            }
            Icon::More => {
                for dx in [-1.0, 0.0, 1.0] {
                    self.canvas
                        .fill_circle(cx + dx * size * 0.14, cy, line * 0.8, c);
                }
            }
            Icon::Search => {
                let rr = size * 0.2;
                self.canvas.ring(cx - rr * 0.3, cy - rr * 0.3, rr, line, c);
                self.canvas.stroke(
                    (cx + rr * 0.45, cy + rr * 0.45),
                    (cx + rr * 1.2, cy + rr * 1.2),
                    line,
                    c,
                );
            }
            Icon::Plus => {
                self.canvas.ring(cx, cy, rad, line, c);
                let d = rad * 0.5;
                self.canvas.stroke((cx - d, cy), (cx + d, cy), line, c);
                self.canvas.stroke((cx, cy - d), (cx, cy + d), line, c);
            }
            Icon::Voice => {
                self.canvas.ring(cx, cy, rad, line, c);
                self.canvas.fill_circle(cx - rad * 0.3, cy, line, c);
                self.canvas
                    .ring(cx - rad * 0.3, cy, rad * 0.45, line * 0.8, c);
            }
            Icon::Emoji => {
                self.canvas.ring(cx, cy, rad, line, c);
                for dx in [-0.35, 0.35] {
                    self.canvas
                        .fill_circle(cx + rad * dx, cy - rad * 0.2, line * 0.7, c);
                }
                self.canvas.stroke(
                    (cx - rad * 0.35, cy + rad * 0.35),
                    (cx + rad * 0.35, cy + rad * 0.35),
                    line * 0.8,
                    c,
                );
            }
            Icon::Mute => {
                let grey = self.palette.ink(Ink::TextFaint);
                self.canvas.ring(cx, cy, size * 0.25, line * 0.7, grey);
                self.canvas.stroke(
                    (cx - size * 0.3, cy - size * 0.3),
                    (cx + size * 0.3, cy + size * 0.3),
                    line * 0.7,
                    grey,
                );
            }
            Icon::Tab { index, selected } => {
                let c = if selected {
                    self.palette.ink(Ink::Brand)
                } else {
                    c
                };
                let rr = size * 0.34;
                match index {
                    // 微信: a speech bubble.
                    0 => {
                        if selected {
                            self.canvas.fill_circle(cx, cy, rr, c);
                        } else {
                            self.canvas.ring(cx, cy, rr, line, c);
                        }
                        self.canvas.fill_triangle(
                            [
                                (cx - rr * 0.7, cy + rr * 0.5),
                                (cx - rr * 0.9, cy + rr * 1.1),
                                (cx - rr * 0.2, cy + rr * 0.85),
                            ],
                            c,
                        );
                    }
                    // 发现: a compass.
                    2 => {
                        self.canvas.ring(cx, cy, rr, line, c);
                        self.canvas.fill_triangle(
                            [
                                (cx + rr * 0.5, cy - rr * 0.5),
                                (cx - rr * 0.15, cy - rr * 0.15),
                                (cx + rr * 0.15, cy + rr * 0.15),
                            ],
                            c,
                        );
                    }
                    // 通讯录 and 我: a person.
                    _ => {
                        self.canvas.ring(cx, cy - rr * 0.35, rr * 0.4, line, c);
                        self.canvas.ring(cx, cy + rr * 1.1, rr * 0.9, line, c);
                    }
                }
            }
            Icon::Battery => {
                let (l, t, rr, b) = (
                    r.left as f32,
                    r.top as f32 + r.height() as f32 * 0.2,
                    r.right as f32 - size * 0.15,
                    r.bottom as f32 - r.height() as f32 * 0.2,
                );
                let text = self.palette.ink(Ink::Text);
                let w = line * 0.6;
                for (a, z) in [
                    ((l, t), (rr, t)),
                    ((rr, t), (rr, b)),
                    ((rr, b), (l, b)),
                    ((l, b), (l, t)),
                ] {
                    self.canvas.stroke(a, z, w, text);
                }
                let inner = 2.0 * w;
                self.canvas.fill(
                    rect(
                        (l + inner).round() as i32,
                        (t + inner).round() as i32,
                        (l + inner + (rr - l - 2.0 * inner) * 0.8).round() as i32,
                        (b - inner).round() as i32,
                    ),
                    text,
                );
                self.canvas.fill(
                    rect(
                        (rr + w).round() as i32,
                        (cy - size * 0.08).round() as i32,
                        (rr + w + size * 0.08).round() as i32,
                        (cy + size * 0.08).round() as i32,
                    ),
                    text,
                );
            }
            Icon::App => self.canvas.fill_rounded(r, self.px(20), 0x8E8E93),
        }
    }

    fn badge(&mut self, node: &Node, r: Rect) {
        self.canvas
            .fill_rounded(r, r.height() as f32 / 2.0, self.palette.red());
        self.line(
            &node.text,
            (r.left as f32, r.width() as f32),
            r.top as f32,
            r.height() as f32,
            TIME_SIZE,
            Align::Centre,
            0xFFFFFF,
        );
    }
}

fn centre(r: Rect) -> (f32, f32) {
    (
        (r.left + r.right) as f32 / 2.0,
        (r.top + r.bottom) as f32 / 2.0,
    )
}

fn aligned(x: f32, w: f32, content: f32, align: Align) -> f32 {
    match align {
        Align::Left => x,
        Align::Centre => x + (w - content) / 2.0,
        Align::Right => x + w - content,
    }
}

fn mix(a: u32, b: u32, t: f32) -> u32 {
    let t = t.clamp(0.0, 1.0);
    let (ca, cb) = (canvas::rgb(a), canvas::rgb(b));
    let mut out = 0u32;
    for k in 0..3 {
        let v = f32::from(ca[k]) + (f32::from(cb[k]) - f32::from(ca[k])) * t;
        out = (out << 8) | u32::from(v.round() as u8);
    }
    out
}
