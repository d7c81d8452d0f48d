//! An RGB pixel buffer with the few shapes WeChat's screens are made of: rectangles, rounded
//! rectangles, circles, rings, strokes and triangles, anti-aliased at their edges, all cut to a
//! clip rectangle (the part of a node that shows).

use crate::wechat::ui::Rect;

pub struct Canvas {
    pub width: i32,
    pub height: i32,
    pub px: Vec<u8>,
    /// Drawing lands only inside this.
    clip: Rect,
}

pub fn rgb(c: u32) -> [u8; 3] {
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}

impl Canvas {
    pub fn new(width: i32, height: i32, bg: u32) -> Self {
        let c = rgb(bg);
        let n = (width.max(0) as usize) * (height.max(0) as usize);
        let mut px = Vec::with_capacity(n * 3);
        for _ in 0..n {
            px.extend_from_slice(&c);
        }
        let clip = Rect {
            left: 0,
            top: 0,
            right: width,
            bottom: height,
        };
        Canvas {
            width,
            height,
            px,
            clip,
        }
    }

    fn whole(&self) -> Rect {
        Rect {
            left: 0,
            top: 0,
            right: self.width,
            bottom: self.height,
        }
    }

    /// Limits drawing to `r` (and the canvas) until the next call.
    pub fn set_clip(&mut self, r: Rect) {
        self.clip = r.intersect(&self.whole()).unwrap_or_default();
    }

    pub fn fill(&mut self, r: Rect, color: u32) {
        let Some(r) = r.intersect(&self.clip) else {
            return;
        };
        let c = rgb(color);
        for y in r.top..r.bottom {
            let row = (y * self.width) as usize * 3;
            for x in r.left..r.right {
                let i = row + x as usize * 3;
                self.px[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// Mixes `color` into the pixel at (x, y) by `alpha` (0–1).
    pub fn blend(&mut self, x: i32, y: i32, color: u32, alpha: f32) {
        if alpha <= 0.0 || !self.clip.contains(x, y) {
            return;
        }
        let i = (y * self.width + x) as usize * 3;
        let c = rgb(color);
        if alpha >= 1.0 {
            self.px[i..i + 3].copy_from_slice(&c);
            return;
        }
        for (dst, src) in self.px[i..i + 3].iter_mut().zip(c) {
            let old = f32::from(*dst);
            *dst = (old + (f32::from(src) - old) * alpha).round() as u8;
        }
    }

    /// Paints every pixel of `bbox` by the coverage `f` gives its centre (0 outside, 1 inside).
    fn cover(&mut self, bbox: (f32, f32, f32, f32), color: u32, f: impl Fn(f32, f32) -> f32) {
        let (l, t, r, b) = bbox;
        let (x0, y0) = (
            (l.floor() as i32).max(self.clip.left),
            (t.floor() as i32).max(self.clip.top),
        );
        let (x1, y1) = (
            (r.ceil() as i32).min(self.clip.right),
            (b.ceil() as i32).min(self.clip.bottom),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let a = f(x as f32 + 0.5, y as f32 + 0.5);
                if a > 0.0 {
                    self.blend(x, y, color, a.min(1.0));
                }
            }
        }
    }

    /// A rectangle with corners rounded to `radius`.
    pub fn fill_rounded(&mut self, r: Rect, radius: f32, color: u32) {
        let radius = radius
            .min(r.width() as f32 / 2.0)
            .min(r.height() as f32 / 2.0)
            .max(0.0);
        let k = radius.ceil() as i32;
        if k == 0 {
            self.fill(r, color);
            return;
        }
        // The cross without the corners, solid; the four corners anti-aliased.
        self.fill(
            Rect {
                top: r.top + k,
                bottom: r.bottom - k,
                ..r
            },
            color,
        );
        self.fill(
            Rect {
                left: r.left + k,
                right: r.right - k,
                bottom: r.top + k,
                ..r
            },
            color,
        );
        self.fill(
            Rect {
                left: r.left + k,
                right: r.right - k,
                top: r.bottom - k,
                ..r
            },
            color,
        );
        let (l, t, rr, b) = (r.left as f32, r.top as f32, r.right as f32, r.bottom as f32);
        let corners = [
            (l + radius, t + radius, l, t),
            (rr - radius, t + radius, rr - k as f32, t),
            (l + radius, b - radius, l, b - k as f32),
            (rr - radius, b - radius, rr - k as f32, b - k as f32),
        ];
        for (cx, cy, bx, by) in corners {
            self.cover((bx, by, bx + k as f32, by + k as f32), color, |x, y| {
                radius - ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() + 0.5
            });
        }
    }

    pub fn fill_circle(&mut self, cx: f32, cy: f32, radius: f32, color: u32) {
        self.cover(
            (
                cx - radius - 1.0,
                cy - radius - 1.0,
                cx + radius + 1.0,
                cy + radius + 1.0,
            ),
            color,
            |x, y| radius - ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() + 0.5,
        );
    }

    /// A circle's outline, `width` thick.
    pub fn ring(&mut self, cx: f32, cy: f32, radius: f32, width: f32, color: u32) {
        let outer = radius + width;
        self.cover(
            (
                cx - outer - 1.0,
                cy - outer - 1.0,
                cx + outer + 1.0,
                cy + outer + 1.0,
            ),
            color,
            |x, y| {
                let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                width / 2.0 - (d - radius).abs() + 0.5
            },
        );
    }

    /// A straight stroke from (x0, y0) to (x1, y1) with round ends.
    pub fn stroke(&mut self, (x0, y0): (f32, f32), (x1, y1): (f32, f32), width: f32, color: u32) {
        let h = width / 2.0;
        let bbox = (
            x0.min(x1) - h - 1.0,
            y0.min(y1) - h - 1.0,
            x0.max(x1) + h + 1.0,
            y0.max(y1) + h + 1.0,
        );
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = (dx * dx + dy * dy).max(1e-6);
        self.cover(bbox, color, |x, y| {
            let t = (((x - x0) * dx + (y - y0) * dy) / len2).clamp(0.0, 1.0);
            let d = ((x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2)).sqrt();
            h - d + 0.5
        });
    }

    /// A filled triangle (a bubble's tail).
    pub fn fill_triangle(&mut self, p: [(f32, f32); 3], color: u32) {
        let xs = p.map(|q| q.0);
        let ys = p.map(|q| q.1);
        let bbox = (
            xs.iter().copied().fold(f32::MAX, f32::min) - 1.0,
            ys.iter().copied().fold(f32::MAX, f32::min) - 1.0,
            xs.iter().copied().fold(f32::MIN, f32::max) + 1.0,
            ys.iter().copied().fold(f32::MIN, f32::max) + 1.0,
        );
        // Signed distance to each edge, positive inside whichever way the points wind.
        let area = (p[1].0 - p[0].0) * (p[2].1 - p[0].1) - (p[1].1 - p[0].1) * (p[2].0 - p[0].0);
        let sign = if area >= 0.0 { 1.0 } else { -1.0 };
        self.cover(bbox, color, |x, y| {
            let mut inside = f32::MAX;
            for i in 0..3 {
                let (a, b) = (p[i], p[(i + 1) % 3]);
                let (ex, ey) = (b.0 - a.0, b.1 - a.1);
                let len = (ex * ex + ey * ey).sqrt().max(1e-6);
                let d = sign * (ex * (y - a.1) - ey * (x - a.0)) / len;
                inside = inside.min(d);
            }
            inside + 0.5
        });
    }
}
