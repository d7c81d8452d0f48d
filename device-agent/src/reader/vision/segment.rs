//! Finding what is where on a screenshot, before any text is read: the bottom bar that says
//! which screen this is, the title bar, bubbles by their fill colours, avatars, pictures,
//! red packets, badges and the lines of grey text between bubbles.
//!
//! Everything is measured in dp, from the screenshot's width (`dp = px × 360 / width`:
//! WeChat lays its screens out 360 dp wide), on a grid that samples one pixel per dp. The
//! grid keeps the work small at any resolution (1080 × 2400 is a 360 × 800 grid); exact
//! edges are then found on the full picture where they matter (a bubble's top and corners,
//! to tell a bubble cut by the list's edge).
//!
//! WeChat's colours come from WeUI (`Tencent/weui`, `src/style/base/theme/vars/light.less`
//! and `dark.less`): own bubbles `LIGHTGREEN` #95EC69 (older builds #A0E75A; dark #3EB575),
//! others' bubbles `BG-2` white (dark: `BG-5` #2C2C2C), `RED` #FA5151 badges, `ORANGE` red
//! packets #FA9D3B (dark #C87D2F), `BRAND` #07C160. The backgrounds are not assumed: they
//! are read off the screen's left edge, where WeChat draws nothing but background.

use image::RgbImage;

use crate::dump::Rect;

pub type Rgb = [u8; 3];

const OWN_GREENS: [Rgb; 3] = [[0x95, 0xEC, 0x69], [0xA0, 0xE7, 0x5A], [0x3E, 0xB5, 0x75]];
const OTHERS_LIGHT: Rgb = [0xFF, 0xFF, 0xFF];
const OTHERS_DARK: Rgb = [0x2C, 0x2C, 0x2C];
const ORANGES: [Rgb; 2] = [[0xFA, 0x9D, 0x3B], [0xC8, 0x7D, 0x2F]];
const RED: Rgb = [0xFA, 0x51, 0x51];
const BRAND: Rgb = [0x07, 0xC1, 0x60];

/// WeChat's screens are this many dp wide.
const WIDTH_DP: f32 = 360.0;

pub fn lum(c: Rgb) -> f32 {
    0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2])
}

/// Whether every channel of `a` is within `tol` of `b`'s.
pub fn near(a: Rgb, b: Rgb, tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

/// A box in grid cells (dp), right and bottom exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cells {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Cells {
    pub fn w(&self) -> i32 {
        self.x1 - self.x0
    }
    pub fn h(&self) -> i32 {
        self.y1 - self.y0
    }
    fn union(&self, o: &Cells) -> Cells {
        Cells {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }
}

/// The screenshot and its one-pixel-per-dp grid.
pub struct Grid<'a> {
    pub img: &'a RgbImage,
    pub w: i32,
    pub h: i32,
    /// Screen pixels per dp.
    pub scale: f32,
    cells: Vec<Rgb>,
    /// Each grid row's background: the colour at the left edge (2 dp in).
    edge: Vec<Rgb>,
}

impl<'a> Grid<'a> {
    pub fn new(img: &'a RgbImage) -> Self {
        let scale = img.width() as f32 / WIDTH_DP;
        let w = WIDTH_DP as i32;
        let h = (img.height() as f32 / scale).floor() as i32;
        let mut cells = Vec::with_capacity((w * h) as usize);
        let xs: Vec<u32> = (0..w)
            .map(|x| (((x as f32 + 0.5) * scale) as u32).min(img.width() - 1))
            .collect();
        for y in 0..h {
            let py = (((y as f32 + 0.5) * scale) as u32).min(img.height() - 1);
            for &px in &xs {
                cells.push(img.get_pixel(px, py).0);
            }
        }
        // A row's background: the colour most of a few cells at both edges share (a status
        // bar icon or an avatar may sit on one of them).
        let edge = (0..h)
            .map(|y| {
                let row = &cells[(y * w) as usize..((y + 1) * w) as usize];
                let samples = [
                    row[1],
                    row[2],
                    row[3],
                    row[w as usize - 4],
                    row[w as usize - 3],
                    row[w as usize - 2],
                ];
                // On a tie the left edge wins: a scroll bar or a floating button (`N条新消息`)
                // takes the right edge on some rows, the left holds only background there.
                *samples
                    .iter()
                    .rev()
                    .max_by_key(|a| samples.iter().filter(|b| near(**a, **b, 4)).count())
                    .unwrap_or(&samples[1])
            })
            .collect();
        Grid {
            img,
            w,
            h,
            scale,
            cells,
            edge,
        }
    }

    pub fn at(&self, x: i32, y: i32) -> Rgb {
        self.cells[(y * self.w + x) as usize]
    }

    pub fn edge(&self, y: i32) -> Rgb {
        self.edge[y as usize]
    }

    /// dp → screen pixels.
    pub fn px(&self, dp: f32) -> i32 {
        (dp * self.scale).round() as i32
    }

    pub fn to_rect(&self, c: &Cells) -> Rect {
        let (iw, ih) = (self.img.width() as i32, self.img.height() as i32);
        Rect {
            left: ((c.x0 as f32 * self.scale).floor() as i32).clamp(0, iw),
            top: ((c.y0 as f32 * self.scale).floor() as i32).clamp(0, ih),
            right: ((c.x1 as f32 * self.scale).ceil() as i32).clamp(0, iw),
            bottom: ((c.y1 as f32 * self.scale).ceil() as i32).clamp(0, ih),
        }
    }

    fn pixel(&self, x: i32, y: i32) -> Option<Rgb> {
        (x >= 0 && y >= 0 && (x as u32) < self.img.width() && (y as u32) < self.img.height())
            .then(|| self.img.get_pixel(x as u32, y as u32).0)
    }

    /// Whether the cell differs from its row's background.
    fn is_ink(&self, x: i32, y: i32) -> bool {
        !near(self.at(x, y), self.edge(y), 10)
    }
}

/// Connected components (4-neighbours) of the cells `pick` accepts inside `area`.
fn components(area: Cells, pick: impl Fn(i32, i32) -> bool) -> Vec<Component> {
    let (aw, ah) = (area.w().max(0), area.h().max(0));
    let mut seen = vec![false; (aw * ah) as usize];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for sy in 0..ah {
        for sx in 0..aw {
            let i = (sy * aw + sx) as usize;
            if seen[i] || !pick(area.x0 + sx, area.y0 + sy) {
                continue;
            }
            seen[i] = true;
            stack.push((sx, sy));
            let mut c = Component {
                cells: Cells {
                    x0: sx,
                    y0: sy,
                    x1: sx + 1,
                    y1: sy + 1,
                },
                count: 0,
            };
            while let Some((x, y)) = stack.pop() {
                c.count += 1;
                c.cells.x0 = c.cells.x0.min(x);
                c.cells.y0 = c.cells.y0.min(y);
                c.cells.x1 = c.cells.x1.max(x + 1);
                c.cells.y1 = c.cells.y1.max(y + 1);
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] {
                    if nx < 0 || ny < 0 || nx >= aw || ny >= ah {
                        continue;
                    }
                    let j = (ny * aw + nx) as usize;
                    if !seen[j] && pick(area.x0 + nx, area.y0 + ny) {
                        seen[j] = true;
                        stack.push((nx, ny));
                    }
                }
            }
            c.cells.x0 += area.x0;
            c.cells.x1 += area.x0;
            c.cells.y0 += area.y0;
            c.cells.y1 += area.y0;
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Component {
    cells: Cells,
    count: i32,
}

impl Component {
    fn fill(&self) -> f32 {
        self.count as f32 / (self.cells.w() * self.cells.h()).max(1) as f32
    }
}

/// A horizontal band of rows with one background colour at the left edge.
#[derive(Debug, Clone, Copy)]
struct Run {
    y0: i32,
    y1: i32,
    colour: Rgb,
}

fn edge_runs(grid: &Grid<'_>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for y in 0..grid.h {
        let c = grid.edge(y);
        match runs.last_mut() {
            Some(r) if near(r.colour, c, 4) => r.y1 = y + 1,
            _ => runs.push(Run {
                y0: y,
                y1: y + 1,
                colour: c,
            }),
        }
    }
    runs
}

/// What the bottom bar says the screen is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// A chat's input bar: a wide field between round buttons.
    Input,
    /// The main screen's tab bar: four tabs (微信, 通讯录, 发现, 我).
    Tabs,
}

#[derive(Debug, Clone, Copy)]
pub struct Bar {
    pub kind: BarKind,
    pub cells: Cells,
    pub colour: Rgb,
    /// The input field (chats only).
    pub field: Option<Cells>,
}

/// The lowest band of the screen that is WeChat's input bar or tab bar. A system
/// navigation bar below it (three buttons, a gesture strip) is skipped, whatever its colour.
fn find_bar(grid: &Grid<'_>) -> Option<Bar> {
    let runs = edge_runs(grid);
    for (i, run) in runs.iter().enumerate().rev() {
        let h = run.y1 - run.y0;
        if !(30..=160).contains(&h) || run.y0 < grid.h / 2 {
            continue;
        }
        // Some builds draw a soft shadow above the bar: a few rows stepping from the bar's
        // colour towards the chat's (vivo's 8.0: 249, 248 over a 247 bar). They belong to
        // the bar, or the chat's background would be read off a shadow row.
        let mut top = run.y0;
        for prev in runs[..i].iter().rev() {
            if prev.y1 - prev.y0 > 6 || (lum(prev.colour) - lum(run.colour)).abs() > 12.0 {
                break;
            }
            top = prev.y0;
        }
        let cells = Cells {
            x0: 0,
            y0: top,
            x1: grid.w,
            y1: run.y1,
        };
        if let Some(field) = input_field(grid, run) {
            return Some(Bar {
                kind: BarKind::Input,
                cells,
                colour: run.colour,
                field: Some(field),
            });
        }
        if is_tab_bar(grid, run) {
            return Some(Bar {
                kind: BarKind::Tabs,
                cells,
                colour: run.colour,
                field: None,
            });
        }
    }
    None
}

/// The input field: on some row of the bar, one colour other than the bar's spans at least
/// 45 % of the width, starting in the left third.
fn input_field(grid: &Grid<'_>, run: &Run) -> Option<Cells> {
    let comps = components(
        Cells {
            x0: 0,
            y0: run.y0,
            x1: grid.w,
            y1: run.y1,
        },
        |x, y| {
            let c = grid.at(x, y);
            !near(c, run.colour, 4) && !near(c, BRAND, 30)
        },
    );
    comps
        .into_iter()
        .filter(|c| {
            c.cells.w() as f32 >= 0.45 * grid.w as f32
                && c.cells.x0 < grid.w / 3
                && c.cells.h() >= 12
                && c.fill() > 0.6
        })
        .map(|c| c.cells)
        .max_by_key(|c| c.w())
}

/// Four tabs: ink in each quarter's middle, nothing at the quarters' borders.
fn is_tab_bar(grid: &Grid<'_>, run: &Run) -> bool {
    let column_has_ink = |x: i32| (run.y0..run.y1).any(|y| !near(grid.at(x, y), run.colour, 12));
    let quarter = grid.w / 4;
    let tabs = (0..4).all(|q| {
        let mid = q * quarter + quarter / 2;
        (mid - 6..=mid + 6).any(column_has_ink)
    });
    // A badge may lie over a border, and a gesture handle across the bottom; labels and
    // icons never do. Check the border columns where labels sit.
    let h = run.y1 - run.y0;
    let (from, to) = (run.y0 + h / 2, run.y0 + h * 17 / 20);
    let borders_clear = (1..4).all(|q| {
        let x = q * quarter;
        (from..to).all(|y| near(grid.at(x, y), run.colour, 12))
    });
    tabs && borders_clear
}

/// A line of text found between bubbles (or in a bar), with the colour contrast of its ink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextLine {
    pub cells: Cells,
    /// What to read, in screen pixels: the cells with a margin, kept off avatars.
    pub rect: Rect,
    /// Luminance difference of the line's strongest ink from its background.
    pub contrast: f32,
}

impl TextLine {
    /// WeChat draws time dividers, system lines, names and times in grey.
    pub fn is_grey(&self) -> bool {
        self.contrast < 140.0
    }
}

/// What a chat item is before its text is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Block {
    /// A text bubble; `body` is the bubble without its tail, in screen pixels.
    Bubble {
        own: bool,
        fill: Rgb,
        body: Rect,
    },
    RedPacket {
        own: bool,
        body: Rect,
    },
    /// A picture or a sticker: drawn without a bubble.
    Picture {
        own: bool,
    },
    /// Centred grey text: a time divider or a system line (the text tells which).
    Centre(TextLine),
}

#[derive(Debug, Clone)]
pub struct ChatBlock {
    pub block: Block,
    /// Where it is on screen, in pixels.
    pub bounds: Rect,
    pub cells: Cells,
    /// The group member's name line above it (others' messages in groups).
    pub sender: Option<TextLine>,
}

#[derive(Debug, Clone)]
pub struct ChatLayout {
    pub background: Rgb,
    pub area: Cells,
    pub title: Option<TextLine>,
    pub back_button: Option<Cells>,
    pub back_badge: Option<Cells>,
    pub blocks: Vec<ChatBlock>,
    pub field: Cells,
    pub field_colour: Rgb,
    pub field_has_text: bool,
    pub send_button: Option<Cells>,
}

#[derive(Debug, Clone)]
pub struct RowLayout {
    pub cells: Cells,
    pub title: Option<TextLine>,
    pub preview: Option<TextLine>,
    pub time: Option<TextLine>,
    pub badge: Option<Cells>,
    pub dot: bool,
    pub muted: bool,
    /// The row's background, for reading its text.
    pub background: Rgb,
}

#[derive(Debug, Clone)]
pub struct ListLayout {
    pub title: Option<TextLine>,
    pub title_background: Rgb,
    pub tab_badge: Option<Cells>,
    pub bar_colour: Rgb,
    pub rows: Vec<RowLayout>,
}

#[derive(Debug, Clone)]
pub enum Layout {
    Chat(ChatLayout),
    List(ListLayout),
    Other,
}

pub fn segment(grid: &Grid<'_>) -> Layout {
    match find_bar(grid) {
        Some(bar) if bar.kind == BarKind::Input => Layout::Chat(chat(grid, &bar)),
        Some(bar) => Layout::List(list(grid, &bar)),
        None => Layout::Other,
    }
}

/// Rows of `area` holding ink (cells unlike their row's background), as bands; gaps up to
/// `join` rows are bridged.
fn ink_bands(area: Cells, ink: impl Fn(i32, i32) -> bool, join: i32) -> Vec<Cells> {
    let mut bands: Vec<Cells> = Vec::new();
    for y in area.y0..area.y1 {
        let xs: Vec<i32> = (area.x0..area.x1).filter(|&x| ink(x, y)).collect();
        let (Some(&x0), Some(&x1)) = (xs.first(), xs.last()) else {
            continue;
        };
        let row = Cells {
            x0,
            y0: y,
            x1: x1 + 1,
            y1: y + 1,
        };
        match bands.last_mut() {
            Some(b) if y - b.y1 <= join => *b = b.union(&row),
            _ => bands.push(row),
        }
    }
    bands
}

/// Splits a band into clusters of ink separated by at least `gap` empty columns.
fn clusters(band: Cells, ink: impl Fn(i32, i32) -> bool, gap: i32) -> Vec<Cells> {
    let mut out: Vec<Cells> = Vec::new();
    for x in band.x0..band.x1 {
        let ys: Vec<i32> = (band.y0..band.y1).filter(|&y| ink(x, y)).collect();
        let (Some(&y0), Some(&y1)) = (ys.first(), ys.last()) else {
            continue;
        };
        let col = Cells {
            x0: x,
            y0,
            x1: x + 1,
            y1: y1 + 1,
        };
        match out.last_mut() {
            Some(c) if x - c.x1 < gap => *c = c.union(&col),
            _ => out.push(col),
        }
    }
    out
}

/// The contrast of the line's ink against `bg`: the 80th percentile over its ink pixels,
/// not the strongest one, so that an emoji or a dark icon inside a grey system line
/// (`"📷名字"邀请…加入了群聊`) does not make the line look like black text.
fn contrast(grid: &Grid<'_>, cells: Cells, bg: Rgb) -> f32 {
    let r = grid.to_rect(&cells);
    let lb = lum(bg);
    let mut ink: Vec<f32> = Vec::new();
    for y in r.top..r.bottom {
        for x in r.left..r.right {
            if let Some(p) = grid.pixel(x, y) {
                let d = (lum(p) - lb).abs();
                if d > 20.0 {
                    ink.push(d);
                }
            }
        }
    }
    if ink.is_empty() {
        return 0.0;
    }
    ink.sort_by(f32::total_cmp);
    ink[(ink.len() * 4 / 5).min(ink.len() - 1)]
}

fn text_line(grid: &Grid<'_>, cells: Cells, bg: Rgb) -> TextLine {
    let r = grid.to_rect(&cells);
    let (dx, dy) = (grid.px(2.0), grid.px(1.0));
    TextLine {
        cells,
        rect: Rect {
            left: r.left - dx,
            top: r.top - dy,
            right: r.right + dx,
            bottom: r.bottom + dy,
        },
        contrast: contrast(grid, cells, bg),
    }
}

/// The title bar's band: the first band of ink from the top (above `limit`) with ink near
/// the centre; the status bar above it keeps to the sides.
fn title_band(grid: &Grid<'_>, limit: i32) -> Option<Cells> {
    let top = Cells {
        x0: 0,
        y0: 0,
        x1: grid.w,
        y1: limit.min(grid.h),
    };
    let bands = ink_bands(top, |x, y| grid.is_ink(x, y), 1);
    let centre = grid.w / 2;
    // A band holding a wide run of bubble colour is a bubble, not the title: on a
    // screenshot cropped under the title bar the first band is a message.
    let bubble_row = |y: i32| {
        let mut run = 0;
        (0..grid.w).any(|x| {
            let c = grid.at(x, y);
            let fill = OWN_GREENS.iter().any(|g| near(c, *g, 10))
                || (!near(c, grid.edge(y), 6)
                    && (near(c, OTHERS_LIGHT, 5) || near(c, OTHERS_DARK, 5)));
            run = if fill { run + 1 } else { 0 };
            run >= BUBBLE_RUN_DP
        })
    };
    bands.into_iter().find(|b| {
        b.h() >= 6
            && (b.y0..b.y1).any(|y| (centre - 30..centre + 30).any(|x| grid.is_ink(x, y)))
            && !(b.y0..b.y1).any(bubble_row)
    })
}

/// The colour most rows between `y0` and `y1` show at their edges: the chat's background,
/// whatever a shadow, a floating button or a scroll bar puts on a few rows.
fn dominant_edge(grid: &Grid<'_>, y0: i32, y1: i32) -> Rgb {
    let mut tally: Vec<(Rgb, i32)> = Vec::new();
    for y in y0.max(0)..y1.min(grid.h) {
        let c = grid.edge(y);
        match tally.iter_mut().find(|(t, _)| near(*t, c, 4)) {
            Some((_, n)) => *n += 1,
            None => tally.push((c, 1)),
        }
    }
    tally
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or_else(|| grid.edge((y1 - 1).clamp(0, grid.h - 1)), |(c, _)| c)
}

fn chat(grid: &Grid<'_>, bar: &Bar) -> ChatLayout {
    let bg = dominant_edge(grid, bar.cells.y0 / 3, bar.cells.y0);
    let dark = lum(bg) < 100.0;
    let others = if dark { OTHERS_DARK } else { OTHERS_LIGHT };
    // The title bar: within the top 130 dp (status bar + action bar on any phone); the
    // message list starts under it.
    let title_band = title_band(grid, 130.min(bar.cells.y0));
    let mut area = Cells {
        x0: 0,
        y0: title_band.map_or(0, |b| b.y1 + 2),
        x1: grid.w,
        y1: bar.cells.y0,
    };

    let mut title = None;
    let mut back_button = None;
    let mut back_badge = None;
    if let Some(band) = title_band {
        let ink = |x: i32, y: i32| grid.is_ink(x, y);
        let parts = clusters(band, ink, 6);
        let centre = grid.w / 2;
        for part in parts {
            let red = count_cells(grid, part, |c| near(c, RED, 30)) * 2 > part.w() * part.h();
            if red {
                back_badge = Some(part);
            } else if part.x1 <= 40 && back_button.is_none() {
                back_button = Some(part);
            } else if part.x0 < centre && part.x1 > centre - 20 || (part.x0 - centre).abs() < 40 {
                title = Some(match title {
                    Some(t) => TextLine::union(t, text_line(grid, part, bg)),
                    None => text_line(grid, part, bg),
                });
            }
        }
    }

    // Where the message list begins: the title bar's lower edge. Android centres the status
    // bar's icons in the status bar and WeChat its title in the action bar below it, so the
    // action bar ends as far below the title's middle as it begins above it. A line cut by
    // that edge is then seen touching the list's top, as a cut bubble is.
    if let (Some(band), Some(t)) = (title_band, title) {
        let status = ink_bands(
            Cells {
                x0: 0,
                y0: 0,
                x1: grid.w,
                y1: band.y0,
            },
            |x, y| grid.is_ink(x, y),
            1,
        );
        let status_bottom = status.first().map_or(0, |s| s.y0 + s.y1);
        let title_mid2 = t.cells.y0 + t.cells.y1;
        let list_top = title_mid2 - status_bottom;
        tracing::trace!(?band, title = ?t.cells, ?status, list_top, "title bar");
        if list_top > band.y1 && list_top < area.y1 {
            area.y0 = list_top;
        }
    }

    let class = |x: i32, y: i32| -> Class {
        let c = grid.at(x, y);
        if near(c, bg, 6) {
            Class::Bg
        } else if OWN_GREENS.iter().any(|g| near(c, *g, 10)) {
            Class::Own
        } else if near(c, others, 5) {
            Class::Others
        } else if ORANGES.iter().any(|o| near(c, *o, 24)) {
            Class::Orange
        } else {
            Class::Ink
        }
    };

    let mut blocks: Vec<ChatBlock> = Vec::new();
    let mut taken: Vec<Cells> = Vec::new();
    let oranges: Vec<Component> = components(area, |x, y| class(x, y) == Class::Orange)
        .into_iter()
        .filter(|c| c.cells.w() >= 40 && c.cells.h() >= 20 && c.fill() > 0.5)
        .collect();
    for o in &oranges {
        // The card's light footer (`微信红包`) is part of it.
        let mut cells = o.cells;
        for y in o.cells.y1..(o.cells.y1 + 40).min(area.y1) {
            let x = (o.cells.x0 + o.cells.x1) / 2;
            if class(x, y) == Class::Bg {
                break;
            }
            cells.y1 = y + 1;
        }
        let own = side_is_right(grid, &cells);
        let bounds = grid.to_rect(&cells);
        if touches(&cells, &area) {
            continue;
        }
        taken.push(cells);
        blocks.push(ChatBlock {
            block: Block::RedPacket {
                own,
                body: grid.to_rect(&o.cells),
            },
            bounds,
            cells,
            sender: None,
        });
    }
    for want in [Class::Own, Class::Others] {
        for comp in components(area, |x, y| class(x, y) == want) {
            let c = comp.cells;
            if c.w() < 16
                || c.h() < 14
                || comp.fill() < 0.3
                || taken.iter().any(|t| overlaps(t, &c))
            {
                continue;
            }
            // WeChat puts own bubbles at the right and others' at the left, each starting
            // beside its avatar column. A patch of bubble colour anywhere else is something
            // else: a white avatar, a floating `N条新消息` pill at the edge, the green or
            // white of a screenshot shown as a picture.
            let right_of_avatar = (AVATAR_COLUMN_DP..=BUBBLE_REACH_DP).contains(&c.x0);
            let left_of_avatar =
                (grid.w - BUBBLE_REACH_DP..=grid.w - AVATAR_COLUMN_DP).contains(&c.x1);
            let own = match want {
                Class::Own if left_of_avatar => true,
                Class::Others if right_of_avatar && left_of_avatar => side_is_right(grid, &c),
                Class::Others if right_of_avatar || left_of_avatar => left_of_avatar,
                _ => continue,
            };
            let Some((body, fill)) = bubble_body(grid, &c, bg) else {
                continue;
            };
            let cut = body.top <= grid.to_rect(&area).top + 1
                || body.bottom >= grid.to_rect(&area).bottom - 1
                || square_corners(grid, &body, fill, fill_tol(fill, bg));
            taken.push(c);
            if cut {
                continue;
            }
            blocks.push(ChatBlock {
                block: Block::Bubble { own, fill, body },
                bounds: body,
                cells: c,
                sender: None,
            });
        }
    }

    // Avatars: what stands in the strips at either edge. A name or a picture may touch an
    // avatar (nothing between them but the edge), so the avatar column ends where others'
    // bubbles begin: at their tails' tips.
    // A bubble's edge is a ring of cells neither background nor fill (anti-aliasing, and
    // JPEG noise on screenshots saved as JPEG): it belongs to the bubble, not to a picture.
    let not_taken = |x: i32, y: i32| {
        class(x, y) != Class::Bg
            && !taken.iter().any(|t| {
                let ringed = Cells {
                    x0: t.x0 - 1,
                    y0: t.y0 - 1,
                    x1: t.x1 + 1,
                    y1: t.y1 + 1,
                };
                contains(&ringed, x, y)
            })
    };
    let strip = 56;
    let left_tips: Vec<i32> = blocks
        .iter()
        .filter_map(|b| match b.block {
            Block::Bubble {
                own: false,
                fill,
                body,
            } => Some(tail_tip(grid, &body, fill, fill_tol(fill, bg), false)),
            _ => None,
        })
        .collect();
    let left_edge = left_tips
        .iter()
        .copied()
        .min()
        .unwrap_or(grid.px(strip as f32));
    let mut avatar_rows: Vec<(i32, i32)> = Vec::new();
    for (x0, x1) in [(0, strip), (grid.w - strip, grid.w)] {
        for comp in components(Cells { x0, x1, ..area }, not_taken) {
            if comp.cells.w() >= 20 && (comp.cells.h() >= 20 || touches(&comp.cells, &area)) {
                avatar_rows.push((comp.cells.y0, comp.cells.y1));
            }
        }
    }
    let cell_px = |x: i32| ((x as f32 + 0.5) * grid.scale) as i32;
    let in_avatar = |x: i32, y: i32| {
        avatar_rows.iter().any(|(y0, y1)| y >= *y0 && y < *y1)
            && (cell_px(x) < left_edge || x >= grid.w - strip)
    };
    let left_over = |x: i32, y: i32| not_taken(x, y) && !in_avatar(x, y);
    let mut glyphs: Vec<Cells> = Vec::new();
    for comp in components(area, left_over) {
        let c = comp.cells;
        if c.w() >= 40 && c.h() >= 40 {
            if !touches(&c, &area) {
                blocks.push(ChatBlock {
                    block: Block::Picture {
                        own: side_is_right(grid, &c),
                    },
                    bounds: grid.to_rect(&c),
                    cells: c,
                    sender: None,
                });
            }
            taken.push(c);
            continue;
        }
        glyphs.push(c);
    }

    // Glyphs into lines: a band of rows, split where a wide gap separates words.
    glyphs.sort_by_key(|g| (g.y0, g.x0));
    let mut lines: Vec<Cells> = Vec::new();
    for g in glyphs {
        let joined = lines.iter_mut().rev().find(|l| {
            let v = l.y0.max(g.y0) < l.y1.min(g.y1) || (g.y0 - l.y1 <= 1 && g.y0 >= l.y0);
            let hgap = (g.x0 - l.x1).max(l.x0 - g.x1);
            v && hgap < 14
        });
        match joined {
            Some(l) => *l = l.union(&g),
            None => lines.push(g),
        }
    }
    // A line may have been built from pieces that now overlap: merge until stable.
    let lines = merge_lines(lines);

    blocks.sort_by_key(|b| b.cells.y0);
    let mut used = vec![false; lines.len()];
    // Names: just above a left message, starting where it starts.
    for i in 0..blocks.len() {
        let own = match blocks[i].block {
            Block::Bubble { own, .. } | Block::RedPacket { own, .. } | Block::Picture { own } => {
                own
            }
            Block::Centre(_) => continue,
        };
        if own {
            continue;
        }
        let b = blocks[i].cells;
        let above = if i > 0 {
            blocks[i - 1].cells.y1
        } else {
            area.y0
        };
        if let Some((j, l)) = lines.iter().enumerate().find(|(j, l)| {
            !used[*j]
                && l.y1 <= b.y0 + 1
                && l.y1 >= b.y0 - 12
                && l.y0 >= above
                && l.y0 > area.y0 + NAME_CUT_DP
                && (l.x0 - b.x0).abs() <= 12
                && l.h() <= 24
        }) {
            used[j] = true;
            let mut line = text_line(grid, *l, bg);
            line.rect.left = line.rect.left.max(left_edge);
            blocks[i].sender = Some(line);
        }
    }
    // A group member's message whose name line the list's top edge cuts or hides is not
    // whole: who wrote it cannot be read, so it is left out as a cut bubble is.
    let group = blocks.iter().any(|b| b.sender.is_some());
    let near_top = |c: &Cells| c.y0 - area.y0 < 26;
    let cut_names: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(j, l)| !used[*j] && l.y0 <= area.y0 + NAME_CUT_DP)
        .map(|(j, _)| j)
        .collect();
    blocks.retain(|b| {
        let left = matches!(
            b.block,
            Block::Bubble { own: false, .. }
                | Block::RedPacket { own: false, .. }
                | Block::Picture { own: false }
        );
        let name_cut = cut_names.iter().any(|&j| {
            lines[j].y1 <= b.cells.y0 + 1
                && lines[j].y1 >= b.cells.y0 - 12
                && (lines[j].x0 - b.cells.x0).abs() <= 12
        });
        !(left && b.sender.is_none() && (name_cut || (group && near_top(&b.cells))))
    });
    for j in cut_names {
        used[j] = true;
    }

    tracing::trace!(?area, ?lines, "lines");
    // Centred grey lines: time dividers and system lines; consecutive ones are one item.
    let centre = grid.w / 2;
    let mut centred: Vec<Cells> = Vec::new();
    for (j, l) in lines.iter().enumerate() {
        // The list's top is estimated: a line starting just under it was cut.
        if used[j] || l.y0 <= area.y0 + 4 || l.y1 >= area.y1 {
            continue;
        }
        let mid = (l.x0 + l.x1) / 2;
        if (mid - centre).abs() > 10 || l.x0 < 30 || l.h() < 4 {
            continue;
        }
        let line = text_line(grid, *l, bg);
        // Grey text, not the faint ring of a bubble's edge (contrast ~9 on a JPEG) nor a
        // vertical sliver: a line of text is wider than high.
        if !line.is_grey() || line.contrast < 40.0 || l.w() < l.h() {
            continue;
        }
        match centred.last_mut() {
            Some(prev)
                if l.y0 - prev.y1 <= 8
                    && !blocks
                        .iter()
                        .any(|b| b.cells.y0 >= prev.y1 && b.cells.y0 < l.y0) =>
            {
                *prev = prev.union(l);
            }
            _ => centred.push(*l),
        }
    }
    for c in centred {
        blocks.push(ChatBlock {
            block: Block::Centre(text_line(grid, c, bg)),
            bounds: grid.to_rect(&c),
            cells: c,
            sender: None,
        });
    }
    blocks.sort_by_key(|b| (b.cells.y0, b.cells.x0));

    let field = bar.field.unwrap_or(bar.cells);
    let field_colour = grid.at((field.x0 + field.x1) / 2, (field.y0 + field.y1) / 2);
    let inner = Cells {
        x0: field.x0 + 6,
        y0: field.y0 + 3,
        x1: field.x1 - 6,
        y1: field.y1 - 3,
    };
    // Typed text starts at the field's left edge. What else may stand in an empty field
    // does not: the caret (WeChat's green, a thin bar at the left) is left out by its
    // colour, and a voice-input microphone that newer builds draw inside the field sits at
    // its right end (seen on real 8.0 screens, fixtures/real-screens).
    let ink = |c: Rgb| (lum(c) - lum(field_colour)).abs() > 60.0 && !near(c, BRAND, 40);
    let start = Cells {
        x1: inner.x0 + inner.w() / 4,
        ..inner
    };
    let field_has_text = count_cells(grid, start, ink) > 3;
    let send_button = components(bar.cells, |x, y| near(grid.at(x, y), BRAND, 30))
        .into_iter()
        .filter(|c| c.cells.w() >= 20 && c.cells.h() >= 12 && c.fill() > 0.5)
        .map(|c| c.cells)
        .max_by_key(|c| c.w());
    ChatLayout {
        background: bg,
        area,
        title,
        back_button,
        back_badge,
        blocks,
        field,
        field_colour,
        field_has_text,
        send_button,
    }
}

impl TextLine {
    fn union(a: TextLine, b: TextLine) -> TextLine {
        TextLine {
            cells: a.cells.union(&b.cells),
            rect: Rect {
                left: a.rect.left.min(b.rect.left),
                top: a.rect.top.min(b.rect.top),
                right: a.rect.right.max(b.rect.right),
                bottom: a.rect.bottom.max(b.rect.bottom),
            },
            contrast: a.contrast.max(b.contrast),
        }
    }
}

fn merge_lines(mut lines: Vec<Cells>) -> Vec<Cells> {
    loop {
        let mut merged = false;
        'outer: for i in 0..lines.len() {
            for j in i + 1..lines.len() {
                let (a, b) = (lines[i], lines[j]);
                let v = a.y0.max(b.y0) < a.y1.min(b.y1);
                let hgap = (b.x0 - a.x1).max(a.x0 - b.x1);
                if v && hgap < 14 {
                    lines[i] = a.union(&b);
                    lines.remove(j);
                    merged = true;
                    break 'outer;
                }
            }
        }
        if !merged {
            return lines;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Bg,
    Own,
    Others,
    Orange,
    Ink,
}

fn contains(c: &Cells, x: i32, y: i32) -> bool {
    x >= c.x0 && x < c.x1 && y >= c.y0 && y < c.y1
}

fn overlaps(a: &Cells, b: &Cells) -> bool {
    a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1
}

/// A group sender's name line that starts this close (dp) under the list's estimated top
/// may have lost the top of its glyphs: OCR then reads another name (陈静 as `PALA` in
/// the vision end-to-end burst), and the chat's watermark no longer aligns. Its message is
/// left out as a cut bubble is; the next read, scrolled or not, shows it whole.
const NAME_CUT_DP: i32 = 10;

/// A run of bubble colour this wide (dp) is a bubble's body: no title bar holds one.
const BUBBLE_RUN_DP: i32 = 30;

/// The avatar column at either edge (dp): a bubble never reaches into it.
const AVATAR_COLUMN_DP: i32 = 48;

/// How far (dp) from the screen's edge a bubble begins: the avatar (40 dp) and its margins
/// (WeChat 8.0: 52 dp; phone-sim: 52.5 dp), with room for other builds' spacing.
const BUBBLE_REACH_DP: i32 = 70;

/// Whether `c` reaches the top or bottom edge of `area`: cut off by the list's edge.
fn touches(c: &Cells, area: &Cells) -> bool {
    c.y0 <= area.y0 || c.y1 >= area.y1
}

fn count_cells(grid: &Grid<'_>, c: Cells, pick: impl Fn(Rgb) -> bool) -> i32 {
    let mut n = 0;
    for y in c.y0.max(0)..c.y1.min(grid.h) {
        for x in c.x0.max(0)..c.x1.min(grid.w) {
            n += i32::from(pick(grid.at(x, y)));
        }
    }
    n
}

/// Own messages hug the right edge (the own avatar's side), others' the left.
fn side_is_right(grid: &Grid<'_>, c: &Cells) -> bool {
    grid.w - c.x1 < c.x0
}

/// How far a pixel may be from a fill colour and still be the fill: half the way to the
/// background, so that the edge between them is found where it is, and wide enough for the
/// noise a JPEG-compressed screenshot leaves in flat colour (±9 per channel seen on a
/// uiautomator2 JPEG of a green bubble) when the fill stands far from the background.
fn fill_tol(fill: Rgb, bg: Rgb) -> u8 {
    let apart = fill
        .iter()
        .zip(bg)
        .map(|(a, b)| a.abs_diff(b))
        .max()
        .unwrap_or(0);
    (apart / 2).clamp(8, 24)
}

/// The bubble's body (without its tail) at full resolution, and its fill colour.
fn bubble_body(grid: &Grid<'_>, c: &Cells, bg: Rgb) -> Option<(Rect, Rgb)> {
    let approx = grid.to_rect(c);
    // A row 3 dp under the top: the body's full width, above any text and the tail.
    let cx = (approx.left + approx.right) / 2;
    let probe_y = approx.top + grid.px(3.0) + 1;
    let fill = grid.pixel(cx, probe_y)?;
    let tol = fill_tol(fill, bg);
    let same = |x: i32, y: i32| grid.pixel(x, y).is_some_and(|p| near(p, fill, tol));
    // Exact top and bottom along the centre column (padding there holds no text).
    let mut top = probe_y;
    while top > 0 && same(cx, top - 1) {
        top -= 1;
    }
    let probe_b = approx.bottom - grid.px(3.0) - 1;
    let mut bottom = probe_b.max(top + 1);
    while same(cx, bottom) {
        bottom += 1;
    }
    let mid_y = top + grid.px(3.0);
    let mut left = cx;
    while same(left - 1, mid_y) {
        left -= 1;
    }
    let mut rightx = cx;
    while same(rightx, mid_y) {
        rightx += 1;
    }
    (rightx - left > grid.px(10.0) && bottom - top > grid.px(10.0)).then_some((
        Rect {
            left,
            top,
            right: rightx,
            bottom,
        },
        fill,
    ))
}

/// The x of a bubble's tail tip (its outer edge at the tail's height), at full resolution.
fn tail_tip(grid: &Grid<'_>, body: &Rect, fill: Rgb, tol: u8, right: bool) -> i32 {
    let same = |x: i32, y: i32| grid.pixel(x, y).is_some_and(|p| near(p, fill, tol));
    let mut tip = if right { body.right } else { body.left };
    // The tail sits level with the first line; scan a few rows there for its furthest point.
    let (from, to) = (body.top + grid.px(10.0), body.top + grid.px(24.0));
    for y in (from..to).step_by(2) {
        let mut x = if right { body.right - 1 } else { body.left };
        if right {
            while same(x + 1, y) {
                x += 1;
            }
            tip = tip.max(x + 1);
        } else {
            while same(x - 1, y) {
                x -= 1;
            }
            tip = tip.min(x);
        }
    }
    tip
}

/// A bubble whose top or bottom corners are square was cut by the list's edge: WeChat
/// rounds every corner of a whole bubble.
fn square_corners(grid: &Grid<'_>, body: &Rect, fill: Rgb, tol: u8) -> bool {
    let same = |x: i32, y: i32| grid.pixel(x, y).is_some_and(|p| near(p, fill, tol));
    let (l, r) = (body.left + 1, body.right - 2);
    (same(l, body.top) && same(r, body.top))
        || (same(l, body.bottom - 1) && same(r, body.bottom - 1))
}

fn list(grid: &Grid<'_>, bar: &Bar) -> ListLayout {
    // The tab's badge: red over the first tab.
    let first_tab = Cells {
        x0: 0,
        y0: bar.cells.y0,
        x1: grid.w / 4,
        y1: bar.cells.y1,
    };
    let tab_badge = components(first_tab, |x, y| near(grid.at(x, y), RED, 30))
        .into_iter()
        .filter(|c| c.cells.h() >= 10)
        .map(|c| c.cells)
        .next();

    // Avatars: squares at the left, between the title bar and the tab bar.
    let title_band = title_band(grid, 130.min(bar.cells.y0));
    let area = Cells {
        x0: 0,
        y0: title_band.map_or(0, |b| b.y1 + 2),
        x1: grid.w,
        y1: bar.cells.y0,
    };
    let left_strip = Cells {
        x0: 0,
        x1: 70,
        ..area
    };
    let mut avatars: Vec<Cells> = components(left_strip, |x, y| {
        grid.is_ink(x, y) && !near(grid.at(x, y), RED, 30)
    })
    .into_iter()
    .filter(|c| c.cells.w() >= 25 && c.cells.w() <= 70 && c.fill() > 0.6)
    .map(|c| c.cells)
    .collect();
    avatars.sort_by_key(|a| a.y0);

    // Every row's avatar stands in one column. A group's avatar is a mosaic of members'
    // pictures with light gaps, which may be found narrower than it is; the text starts
    // right of the column, whatever one avatar's box says.
    let column_x1 = avatars
        .iter()
        .filter(|a| a.h() as f32 >= 0.85 * a.w() as f32)
        .map(|a| a.x1)
        .max()
        .unwrap_or(0);
    let side = avatars
        .iter()
        .filter(|a| (a.w() - a.h()).abs() <= 2)
        .map(Cells::w)
        .min()
        .unwrap_or(0);
    let mut rows = Vec::new();
    for (i, a) in avatars.iter().enumerate() {
        let side = if side == 0 { a.w() } else { side };
        // Cut at the list's edge: not a whole row.
        if (a.h() as f32) < 0.85 * a.w() as f32 || touches(a, &area) {
            continue;
        }
        let gap_above = if i > 0 {
            (a.y0 - avatars[i - 1].y1) / 2
        } else {
            10
        };
        let gap_below = avatars.get(i + 1).map_or(10, |n| (n.y0 - a.y1) / 2);
        let cells = Cells {
            x0: 0,
            y0: (a.y0 - gap_above.clamp(4, 14)).max(area.y0),
            x1: grid.w,
            y1: (a.y1 + gap_below.clamp(4, 14)).min(area.y1),
        };
        let background = grid.edge((cells.y0 + cells.y1) / 2);
        // Red at the avatar's top-right corner: a count badge, or a dot for a muted chat.
        let corner = Cells {
            x0: a.x1 - 16,
            y0: cells.y0,
            x1: a.x1 + 16,
            y1: a.y0 + 16,
        };
        // A badge or a dot is a disc of at least 5 dp centred on the avatar's top-right
        // corner; red inside an avatar's picture (a few cells of a red dress in a group's
        // mosaic) is smaller or elsewhere. The corner is measured from the avatar's
        // bottom-left, which no disc touches (its box grows by the disc's anti-aliased
        // ring), with the side every avatar in the list has.
        let corner_x = a.x0 + side;
        let corner_y = a.y1 - side;
        let red = components(corner, |x, y| near(grid.at(x, y), RED, 30))
            .into_iter()
            .map(|c| c.cells)
            .filter(|r| {
                r.w() >= 5
                    && r.h() >= 5
                    && ((r.x0 + r.x1) / 2 - corner_x).abs() <= r.w()
                    && ((r.y0 + r.y1) / 2 - corner_y).abs() <= r.h()
            })
            .max_by_key(|c| c.w() * c.h());
        let (badge, dot) = match red {
            Some(r) if r.h() >= 11 => (Some(r), false),
            Some(_) => (None, true),
            None => (None, false),
        };
        let text = Cells {
            x0: (a.x1.max(column_x1) + 4).max(badge.map_or(0, |b| b.x1 + 2)),
            x1: grid.w - 2,
            ..cells
        };
        // Text, not the faint separators between rows nor a badge's pink edge.
        let ink = |x: i32, y: i32| {
            let c = grid.at(x, y);
            (lum(c) - lum(grid.edge(y))).abs() > 40.0 && !reddish(c)
        };
        // The title line (with the time) above the avatar's middle, the preview line (with
        // the mute bell) below it. The lines are found as bands of ink first and then put on
        // either side, not cut at the middle: a title's lower strokes, a keycap emoji in it,
        // reach below the middle, and a cut there gave the preview a sliver of the title.
        let mid2 = a.y0 + a.y1;
        let (mut upper, mut lower) = (
            Cells {
                y1: text.y0,
                ..text
            },
            Cells {
                y1: text.y0,
                ..text
            },
        );
        for band in ink_bands(text, ink, 1) {
            if band.h() < 3 {
                continue;
            }
            let half = if band.y0 + band.y1 < mid2 {
                &mut upper
            } else {
                &mut lower
            };
            *half = if half.h() == 0 {
                Cells {
                    y0: band.y0,
                    y1: band.y1,
                    ..text
                }
            } else {
                Cells {
                    y0: half.y0.min(band.y0),
                    y1: half.y1.max(band.y1),
                    ..text
                }
            };
        }
        let mut title = None;
        let mut time = None;
        let mut up = clusters(upper, ink, 9);
        if let Some(last) = up.last()
            && up.len() > 1
            && last.x1 >= grid.w - 20
        {
            time = Some(text_line(grid, *last, background));
            up.pop();
        }
        // A tag after the name (`元宝` then a grey `AI` pill) is a mark, like the mute bell,
        // not part of the chat's name, which the chat's own title bar shows without it.
        while up.len() > 1 && up.last().is_some_and(|c| is_tag(grid, c)) {
            up.pop();
        }
        if let Some(first) = up.first() {
            let all = up.iter().fold(*first, |acc, c| acc.union(c));
            title = Some(text_line(grid, all, background));
        }
        let mut down = clusters(lower, ink, 9);
        let mut muted = false;
        if let Some(last) = down.last()
            && last.x1 >= grid.w - 20
            && last.w() <= 14
        {
            muted = true;
            down.pop();
        }
        let preview = down
            .first()
            .map(|first| down.iter().fold(*first, |acc, c| acc.union(c)))
            .map(|c| text_line(grid, c, background));
        rows.push(RowLayout {
            cells,
            title,
            preview,
            time,
            badge,
            dot,
            muted,
            background,
        });
    }
    let title_background = title_band.map_or(bar.colour, |b| grid.edge(b.y0));
    ListLayout {
        title: title_band.and_then(|band| {
            let centre = grid.w / 2;
            clusters(band, |x, y| grid.is_ink(x, y), 6)
                .into_iter()
                .filter(|c| c.x0 < centre + 20 && c.x1 > centre - 20)
                .reduce(|a, b| a.union(&b))
                .map(|c| text_line(grid, c, title_background))
        }),
        title_background,
        tab_badge,
        bar_colour: bar.colour,
        rows,
    }
}

/// A filled pill of one colour with a short word inside it (light on the fill): most of
/// its box is that colour, as no run of glyphs is (strokes cover a third of their box or
/// less, and an anti-aliased glyph has no one colour).
fn is_tag(grid: &Grid<'_>, c: &Cells) -> bool {
    if c.w() < 8 || c.h() < 8 {
        return false;
    }
    let mut fills: Vec<Rgb> = Vec::new();
    for y in c.y0..c.y1 {
        for x in c.x0..c.x1 {
            let p = grid.at(x, y);
            if (lum(p) - lum(grid.edge(y))).abs() > 20.0 {
                fills.push(p);
            }
        }
    }
    fills.sort_by(|a, b| lum(*a).total_cmp(&lum(*b)));
    let Some(&median) = fills.get(fills.len() / 2) else {
        return false;
    };
    let same = fills.iter().filter(|p| near(**p, median, 16)).count();
    same * 10 >= (c.w() * c.h()) as usize * 6
}

fn reddish(c: Rgb) -> bool {
    i32::from(c[0]) - i32::from(c[1].max(c[2])) > 40
}
