//! What a UI map finds on a screen, as a picture and a table: every role's nodes boxed and
//! labelled on the screenshot, and which roles are found, missing or ambiguous. The
//! picture a user attaches to a bug report, or looks at while writing a map.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ab_glyph::{FontArc, PxScale};
use image::{ImageFormat, Rgba, RgbaImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use serde::Serialize;

use crate::dump::{Dump, Rect};
use crate::uimap::{Role, UiMap};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("the screenshot is not a readable image: {0}")]
    Screenshot(image::ImageError),
    #[error("cannot encode the picture: {0}")]
    Encode(image::ImageError),
}

/// One node a role matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleHit {
    pub role: &'static str,
    /// The part after `:id/`, or empty when the node has no id.
    pub id: String,
    pub bounds: Rect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleState {
    Found,
    /// The map names it and nothing on this screen matches (normal for a chat's roles on
    /// the list, and the reverse).
    Missing,
    /// A role that appears once per screen matched several nodes: the selector is too
    /// loose for this build.
    Ambiguous,
    /// The map has no selector for it.
    NotInMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleLine {
    pub role: &'static str,
    pub state: RoleState,
    pub count: usize,
    /// The distinct resource ids it matched.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inspection {
    pub hits: Vec<RoleHit>,
    pub table: Vec<RoleLine>,
}

/// Roles that a screen shows at most once; several matches mean a loose selector.
fn is_single(role: Role) -> bool {
    matches!(
        role,
        Role::ScreenTitle
            | Role::ConversationList
            | Role::ChatTitleBar
            | Role::ChatTitle
            | Role::ChatBack
            | Role::ChatBackUnread
            | Role::MessageList
            | Role::Input
            | Role::SendButton
    )
}

/// Matches every role of `map` against the app's nodes in `dump`.
pub fn inspect(dump: &Dump, map: &UiMap) -> Inspection {
    let mut inspection = Inspection::default();
    for &role in Role::ALL {
        if !map.has(role) {
            inspection.table.push(RoleLine {
                role: role.key(),
                state: RoleState::NotInMap,
                count: 0,
                ids: Vec::new(),
            });
            continue;
        }
        let mut ids: Vec<String> = Vec::new();
        let mut count = 0;
        for node in dump
            .nodes()
            .iter()
            .filter(|n| *n.package == *map.package && map.is(role, n))
        {
            count += 1;
            let id = node.short_id().to_string();
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
            inspection.hits.push(RoleHit {
                role: role.key(),
                id,
                bounds: node.bounds,
            });
        }
        let state = match count {
            0 => RoleState::Missing,
            n if n > 1 && is_single(role) => RoleState::Ambiguous,
            _ => RoleState::Found,
        };
        inspection.table.push(RoleLine {
            role: role.key(),
            state,
            count,
            ids,
        });
    }
    inspection
}

/// Whether a pixel is one of the boxes' colours (tests check pictures with it).
pub fn is_role_colour(pixel: Rgba<u8>) -> bool {
    let [r, g, b, _] = pixel.0;
    PALETTE.contains(&[r, g, b])
}

const PALETTE: [[u8; 3]; 12] = [
    [230, 25, 75],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [0, 128, 128],
    [240, 50, 230],
    [128, 0, 0],
    [0, 0, 128],
    [60, 180, 75],
    [170, 110, 40],
    [128, 128, 0],
    [70, 70, 70],
];

/// A colour per role, bright enough to see on WeChat's greys, greens and whites, the same
/// for a role in every picture, and different for roles next to each other in the map.
pub fn role_colour(role: &str) -> Rgba<u8> {
    let index = Role::ALL.iter().position(|r| r.key() == role).unwrap_or(0);
    let [r, g, b] = PALETTE[index % PALETTE.len()];
    Rgba([r, g, b, 255])
}

/// Draws the hits on the screenshot (or, without one, on a blank screen the size of the
/// dump) and returns a PNG. Labels need a font; without one only the boxes are drawn.
pub fn draw(
    screenshot: Option<&[u8]>,
    dump: &Dump,
    inspection: &Inspection,
    font: Option<&FontArc>,
) -> Result<Vec<u8>, InspectError> {
    let mut canvas = match screenshot {
        Some(png) => image::load_from_memory(png)
            .map_err(InspectError::Screenshot)?
            .to_rgba8(),
        None => {
            let (w, h) = screen_size(dump);
            RgbaImage::from_pixel(w, h, Rgba([245, 245, 245, 255]))
        }
    };
    let scale = PxScale::from((canvas.width() as f32 / 45.0).clamp(12.0, 28.0));
    for hit in &inspection.hits {
        let Some(rect) = clipped(hit.bounds, &canvas) else {
            continue;
        };
        let colour = role_colour(hit.role);
        draw_hollow_rect_mut(&mut canvas, rect, colour);
        // Two pixels wide: one-pixel lines vanish when a picture is scaled down.
        if let Some(inner) = clipped(
            Rect {
                left: hit.bounds.left + 1,
                top: hit.bounds.top + 1,
                right: hit.bounds.right - 1,
                bottom: hit.bounds.bottom - 1,
            },
            &canvas,
        ) {
            draw_hollow_rect_mut(&mut canvas, inner, colour);
        }
        if let Some(font) = font {
            let label = if hit.id.is_empty() {
                hit.role.to_string()
            } else {
                format!("{} ({})", hit.role, hit.id)
            };
            let (w, h) = text_size(scale, font, &label);
            let x = hit.bounds.left.max(0);
            let y = hit.bounds.top.max(0);
            if let Some(background) = clipped(
                Rect {
                    left: x,
                    top: y,
                    right: x + i32::try_from(w).unwrap_or(0) + 4,
                    bottom: y + i32::try_from(h).unwrap_or(0) + 4,
                },
                &canvas,
            ) {
                draw_filled_rect_mut(&mut canvas, background, colour);
            }
            draw_text_mut(
                &mut canvas,
                Rgba([255, 255, 255, 255]),
                x + 2,
                y + 1,
                scale,
                font,
                &label,
            );
        }
    }
    let mut png = Vec::new();
    canvas
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(InspectError::Encode)?;
    Ok(png)
}

/// The screen's size from the dump: the largest window's extent.
fn screen_size(dump: &Dump) -> (u32, u32) {
    let (w, h) = dump.nodes().iter().fold((0, 0), |(w, h), n| {
        (w.max(n.bounds.right), h.max(n.bounds.bottom))
    });
    (
        u32::try_from(w).unwrap_or(0).clamp(1, 4096),
        u32::try_from(h).unwrap_or(0).clamp(1, 8192),
    )
}

/// `bounds` as an imageproc rectangle inside the canvas, or None when nothing of it is.
fn clipped(bounds: Rect, canvas: &RgbaImage) -> Option<imageproc::rect::Rect> {
    let (cw, ch) = (
        i32::try_from(canvas.width()).ok()?,
        i32::try_from(canvas.height()).ok()?,
    );
    let left = bounds.left.clamp(0, cw - 1);
    let top = bounds.top.clamp(0, ch - 1);
    let right = bounds.right.clamp(0, cw);
    let bottom = bounds.bottom.clamp(0, ch);
    let (w, h) = (right - left, bottom - top);
    (w > 0 && h > 0)
        .then(|| imageproc::rect::Rect::at(left, top).of_size(w.unsigned_abs(), h.unsigned_abs()))
}

/// A font for the labels: `TAPWIRE_FONT`, else a common system font (DejaVu and Noto on
/// Linux, which `scripts/setup` installs; the system's own on macOS).
pub fn find_font() -> Option<FontArc> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("TAPWIRE_FONT")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend(
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "/System/Library/Fonts/Helvetica.ttc",
            "/Library/Fonts/Arial.ttf",
        ]
        .map(PathBuf::from),
    );
    candidates.iter().find_map(|p| load_font(p))
}

fn load_font(path: &Path) -> Option<FontArc> {
    let bytes = std::fs::read(path).ok()?;
    match FontArc::try_from_vec(bytes) {
        Ok(font) => Some(font),
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "not a usable font");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uimap::UiMaps;

    fn real(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/real-dumps")
            .join(name);
        std::fs::read_to_string(path).expect("fixture")
    }

    fn map_80() -> UiMap {
        let maps = UiMaps::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui-maps"))
            .expect("maps");
        maps.by_name("wechat-8.0").expect("8.0 map").clone()
    }

    #[test]
    fn the_real_list_finds_its_rows_and_misses_the_chat() {
        let dump = Dump::parse(&real("list-8.0.x-2026-01-groups.xml")).expect("dump");
        let inspection = inspect(&dump, &map_80());
        let line = |role: &str| {
            inspection
                .table
                .iter()
                .find(|l| l.role == role)
                .cloned()
                .expect("role")
        };
        assert_eq!(line("conversation_row").state, RoleState::Found);
        assert!(
            line("conversation_row").count >= 8,
            "{:?}",
            line("conversation_row")
        );
        assert_eq!(line("conversation_row").ids, vec!["cj1".to_string()]);
        assert_eq!(line("input").state, RoleState::Missing);
        // The list's title text occurs twice in the real dump (a header copy in the list).
        assert_eq!(line("screen_title").state, RoleState::Ambiguous);
    }

    #[test]
    fn boxes_land_on_the_dump_bounds() {
        let dump = Dump::parse(&real("chat-8.0.x-2026-01-group.xml")).expect("dump");
        let inspection = inspect(&dump, &map_80());
        let png = draw(None, &dump, &inspection, None).expect("png");
        let picture = image::load_from_memory(&png).expect("decode").to_rgba8();
        let input = inspection
            .hits
            .iter()
            .find(|h| h.role == "input")
            .expect("the chat has an input box");
        let colour = role_colour("input");
        let b = input.bounds;
        // The input is drawn after the roles around it, so its edges carry its colour.
        for (x, y) in [
            (b.right - 1, b.bottom - 1),
            ((b.left + b.right) / 2, b.bottom - 1),
            (b.right - 1, (b.top + b.bottom) / 2),
            (b.left, (b.top + b.bottom) / 2),
        ] {
            let pixel = *picture.get_pixel(x as u32, y as u32);
            assert_eq!(pixel, colour, "no input box at ({x},{y})");
        }
        // One pixel outside the box, nothing of it.
        let outside = *picture.get_pixel((b.right + 2) as u32, ((b.top + b.bottom) / 2) as u32);
        assert_ne!(outside, colour);
        // Inside the box, away from the edges and any label, nothing is drawn for it.
        let centre = *picture.get_pixel(
            ((b.left + b.right) / 2) as u32,
            ((b.top + b.bottom) / 2 + 4) as u32,
        );
        assert_ne!(centre, colour);
    }
}
