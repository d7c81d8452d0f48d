//! Screenshots: paints the same view tree the dumps come from. Text is drawn as dark bars
//! (one per wrapped line), which is enough for bubble detection; no font is bundled.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use super::ui::{
    Node, Paint, Rect, SCREEN_H, SCREEN_W, SYSTEMUI_PKG, TEXT_DARK, UPSLIDE_PKG, WECHAT_GREEN,
    WHITE, width_in_units, wrap,
};

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new(bg: u32) -> Self {
        let mut px = Vec::with_capacity((SCREEN_W * SCREEN_H * 3) as usize);
        for _ in 0..SCREEN_W * SCREEN_H {
            px.extend_from_slice(&rgb(bg));
        }
        Canvas { px }
    }

    fn fill(&mut self, r: Rect, color: u32) {
        let (l, t) = (r.left.clamp(0, SCREEN_W), r.top.clamp(0, SCREEN_H));
        let (rr, bb) = (r.right.clamp(0, SCREEN_W), r.bottom.clamp(0, SCREEN_H));
        let c = rgb(color);
        for y in t..bb {
            let row = (y * SCREEN_W) as usize * 3;
            for x in l..rr {
                let i = row + x as usize * 3;
                self.px[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// One bar per line of text, `line_h` apart, starting at `(x, y)`.
    fn text_bars(
        &mut self,
        text: &str,
        (x, y): (i32, i32),
        max_w: i32,
        line_h: i32,
        cap: i32,
        color: u32,
    ) {
        for (i, line) in wrap(text, cap).iter().enumerate() {
            let w = (width_in_units(line) * 13).min(max_w);
            if w > 0 {
                let top = y + i as i32 * line_h + line_h / 4;
                self.fill(
                    Rect {
                        left: x,
                        top,
                        right: x + w,
                        bottom: top + line_h / 2,
                    },
                    color,
                );
            }
        }
    }
}

fn rgb(c: u32) -> [u8; 3] {
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}

fn paint(canvas: &mut Canvas, node: &Node) {
    let r = node.bounds;
    match node.paint {
        Paint::None => {}
        Paint::Fill(c) => canvas.fill(r, c),
        Paint::Avatar => canvas.fill(r, 0xB8C4D6),
        Paint::Dot => canvas.fill(r, 0xFA5151),
        Paint::Badge => {
            canvas.fill(r, 0xFA5151);
            canvas.fill(
                Rect {
                    left: r.left + 8,
                    top: r.top + r.height() / 3,
                    right: r.right - 8,
                    bottom: r.bottom - r.height() / 3,
                },
                WHITE,
            );
        }
        Paint::Text(c) => {
            // Labels do not wrap: one bar per explicit line, centred in short views.
            let lines = node.text.split('\n').count().max(1) as i32;
            let line_h = (r.height() / lines).clamp(16, 42);
            let top = r.top + (r.height() - line_h * lines) / 2;
            canvas.text_bars(&node.text, (r.left, top), r.width(), line_h, i32::MAX, c);
        }
        Paint::Bubble(c) => {
            canvas.fill(r, c);
            let cap = ((r.width() - 56) / 14).max(1);
            let text_color = if c == WECHAT_GREEN { WHITE } else { TEXT_DARK };
            canvas.text_bars(
                &node.text,
                (r.left + 28, r.top + 14),
                r.width() - 56,
                41,
                cap.max(2),
                text_color,
            );
        }
    }
    for c in &node.children {
        paint(canvas, c);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("PNG encoding failed: {0}")]
pub struct RenderError(#[from] image::ImageError);

pub fn screenshot_png(windows: &[Node]) -> Result<Vec<u8>, RenderError> {
    let mut canvas = Canvas::new(0x000000);
    // The dump lists the status bar first, but the system windows are drawn over the app.
    let is_system = |w: &&Node| w.package == SYSTEMUI_PKG || w.package == UPSLIDE_PKG;
    for w in windows
        .iter()
        .filter(|w| !is_system(w))
        .chain(windows.iter().filter(is_system))
    {
        paint(&mut canvas, w);
    }
    let mut out = Vec::with_capacity(256 * 1024);
    // Fast compression keeps a screenshot to a few milliseconds; size hardly matters on loopback.
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub).write_image(
        &canvas.px,
        SCREEN_W as u32,
        SCREEN_H as u32,
        ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}
