//! Screenshots: paints the same view tree the dumps come from. Text is drawn as dark bars
//! (one per wrapped line), which is enough for bubble detection; no font is bundled.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use super::ui::{
    Node, Rect, Role, SCREEN_H, SCREEN_W, SYSTEMUI_PKG, TEXT_DARK, UPSLIDE_PKG, units, wrap,
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
        let (l, t) = (r.l.clamp(0, SCREEN_W), r.t.clamp(0, SCREEN_H));
        let (rr, bb) = (r.r.clamp(0, SCREEN_W), r.b.clamp(0, SCREEN_H));
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
            let w = (units(line) * 13).min(max_w);
            if w > 0 {
                let top = y + i as i32 * line_h + line_h / 4;
                self.fill(
                    Rect {
                        l: x,
                        t: top,
                        r: x + w,
                        b: top + line_h / 2,
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
    match node.role {
        Role::None => {}
        Role::Fill(c) => canvas.fill(r, c),
        Role::Avatar => canvas.fill(r, 0xB8C4D6),
        Role::Dot => canvas.fill(r, 0xFA5151),
        Role::Badge => {
            canvas.fill(r, 0xFA5151);
            canvas.fill(
                Rect {
                    l: r.l + 8,
                    t: r.t + r.h() / 3,
                    r: r.r - 8,
                    b: r.b - r.h() / 3,
                },
                0xFFFFFF,
            );
        }
        Role::Text(c) => {
            // Labels do not wrap: one bar per explicit line, centred in short views.
            let lines = node.text.split('\n').count().max(1) as i32;
            let line_h = (r.h() / lines).clamp(16, 42);
            let top = r.t + (r.h() - line_h * lines) / 2;
            canvas.text_bars(&node.text, (r.l, top), r.w(), line_h, i32::MAX, c);
        }
        Role::Bubble(c) => {
            canvas.fill(r, c);
            let cap = ((r.w() - 56) / 14).max(1);
            let text_color = if c == 0x07C160 { 0xFFFFFF } else { TEXT_DARK };
            canvas.text_bars(
                &node.text,
                (r.l + 28, r.t + 14),
                r.w() - 56,
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
