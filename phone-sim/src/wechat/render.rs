//! Screenshots: paints the same view tree the dumps come from, each node at its dump bounds,
//! so a box drawn from a dump lands on what the picture shows. Text is drawn as dark bars
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

#[cfg(test)]
mod tests {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    use crate::wechat::model::MsgKind;
    use crate::wechat::ui::{BAR_GREY, CHAT_BACKGROUND, OWN_BUBBLE_GREEN, WHITE};

    /// (resource-id, bounds) of every node of the dump, as an inspector would read it.
    fn dump_bounds(xml: &str) -> Vec<(String, [i32; 4])> {
        let mut reader = Reader::from_str(xml);
        let mut out = Vec::new();
        loop {
            match reader.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) if e.name().as_ref() == b"node" => {
                    let mut id = String::new();
                    let mut bounds = [0; 4];
                    for a in e.attributes().flatten() {
                        let v = a.unescape_value().expect("escape").into_owned();
                        match a.key.as_ref() {
                            b"resource-id" => id = v,
                            b"bounds" => {
                                let nums: Vec<i32> = v
                                    .split(|c: char| !c.is_ascii_digit())
                                    .filter(|s| !s.is_empty())
                                    .map(|s| s.parse().expect("number"))
                                    .collect();
                                bounds = [nums[0], nums[1], nums[2], nums[3]];
                            }
                            _ => {}
                        }
                    }
                    out.push((id, bounds));
                }
                Ok(Event::Eof) => break,
                Err(e) => panic!("bad dump: {e}"),
                _ => {}
            }
        }
        out
    }

    fn pixel(png: &[u8], x: i32, y: i32) -> u32 {
        let img = image::load_from_memory(png).expect("PNG").to_rgb8();
        let p = img.get_pixel(x as u32, y as u32).0;
        (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2])
    }

    fn with(dump: &[(String, [i32; 4])], id: &str) -> Vec<[i32; 4]> {
        dump.iter()
            .filter(|(i, _)| i == &format!("com.tencent.mm:id/{id}"))
            .map(|(_, b)| *b)
            .collect()
    }

    /// The screenshot paints the title bar, the rows, the bubbles and the input bar where the
    /// dump says they are, so boxes drawn from a dump land on what the picture shows.
    #[test]
    fn screenshots_paint_what_the_dump_bounds() {
        let d = crate::build_device(&crate::SimConfig {
            scenario: crate::Scenario::default(),
            ..crate::SimConfig::default()
        })
        .expect("device");
        d.with(|st| {
            let ts = st.clock.now();
            st.wechat
                .incoming("Alice", false, None, "hello there", MsgKind::Text, ts);
            st.wechat
                .incoming("Bob", false, None, "hi", MsgKind::Text, ts);
            st.wechat.outgoing_by_owner("Alice", "hello back", ts);
        });

        let png = d.screencap_png().expect("png");
        let dump = dump_bounds(&d.dump_xml());
        let [l, t, _, _] = with(&dump, "ei")[0];
        assert_eq!(pixel(&png, l + 4, t + 4), CHAT_BACKGROUND, "title bar");
        let rows = with(&dump, "cj1");
        assert_eq!(rows.len(), 2);
        for [_, t, r, _] in rows {
            assert_eq!(pixel(&png, r - 8, t + 4), WHITE, "row at {t}");
        }

        d.with(|st| st.wechat.open_chat("Alice"));
        let png = d.screencap_png().expect("png");
        let dump = dump_bounds(&d.dump_xml());
        let bubbles = with(&dump, "bkl");
        assert_eq!(bubbles.len(), 2);
        let colours: Vec<u32> = bubbles
            .iter()
            .map(|[l, t, _, _]| pixel(&png, l + 4, t + 4))
            .collect();
        assert_eq!(
            colours,
            [WHITE, OWN_BUBBLE_GREEN],
            "others white, own green"
        );
        let [l, t, _, _] = with(&dump, "k52")[0];
        assert_eq!(pixel(&png, l + 2, t + 2), BAR_GREY, "input bar");
    }
}
