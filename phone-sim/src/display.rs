//! The phone's display: its size in pixels, its density, and the theme screenshots are drawn
//! in.
//!
//! Every layout in `wechat/ui/` is written in *layout pixels*: the pixels of the 720-wide,
//! 320 dpi (xhdpi) screen the real dumps in `fixtures/real-dumps/` were taken on, i.e. two
//! layout pixels per dp. Android turns dp into pixels as `px = dp × dpi / 160`, so a screen of
//! another density shows the same layout scaled by `dpi / 320`: 1080 wide at 480 dpi (xxhdpi)
//! is 1.5×, 1440 wide at 640 dpi (xxxhdpi) 2×. Those screens are a little shorter for their
//! width (20:9 rather than the vivo's 720×1608), so the layout's height is the screen's height
//! in layout pixels and the bars at the bottom are placed from the bottom edge.

use serde::{Deserialize, Serialize};

/// The density the layouts are written at.
pub const LAYOUT_DENSITY: i32 = 320;
/// The width the layouts are written at.
pub const LAYOUT_WIDTH: i32 = 720;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Screen {
    pub width: i32,
    pub height: i32,
    /// `ro.sf.lcd_density`, what `wm density` prints.
    pub density: i32,
}

impl Default for Screen {
    fn default() -> Self {
        Screen::HD
    }
}

impl Screen {
    /// The vivo the real 8.0.x dumps were taken on.
    pub const HD: Screen = Screen {
        width: 720,
        height: 1608,
        density: 320,
    };
    pub const FHD: Screen = Screen {
        width: 1080,
        height: 2400,
        density: 480,
    };
    pub const QHD: Screen = Screen {
        width: 1440,
        height: 3200,
        density: 640,
    };

    /// The screen's height in layout pixels.
    pub fn layout_height(&self) -> i32 {
        self.to_layout(self.height)
    }

    /// Layout pixels to screen pixels, rounded to the nearest as Android rounds a dimension.
    pub fn to_px(&self, layout: i32) -> i32 {
        scale_round(layout, self.density, LAYOUT_DENSITY)
    }

    /// Screen pixels (a tap, a swipe) to layout pixels.
    pub fn to_layout(&self, px: i32) -> i32 {
        scale_round(px, LAYOUT_DENSITY, self.density)
    }

    /// Screen pixels per layout pixel.
    pub fn scale(&self) -> f32 {
        self.density as f32 / LAYOUT_DENSITY as f32
    }

    /// Width and height in dp, as `dumpsys window` prints them (`w360dp h804dp`).
    pub fn dp(&self) -> (i32, i32) {
        (
            self.width * 160 / self.density,
            self.height * 160 / self.density,
        )
    }
}

fn scale_round(v: i32, num: i32, den: i32) -> i32 {
    if num == den {
        return v;
    }
    let scaled = i64::from(v) * i64::from(num);
    let den = i64::from(den);
    let r = if scaled >= 0 {
        (scaled + den / 2) / den
    } else {
        -((-scaled + den / 2) / den)
    };
    i32::try_from(r).unwrap_or(if r < 0 { i32::MIN } else { i32::MAX })
}

impl std::fmt::Display for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl std::str::FromStr for Screen {
    type Err = String;

    /// `WIDTHxHEIGHT` with a width of 720, 1080 or 1440; the density follows from the width
    /// (320, 480, 640), which keeps the layout 360 dp wide as on the phones it was copied from.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("screen {s:?}: expected WIDTHxHEIGHT, e.g. 720x1608, 1080x2400, 1440x3200");
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let width: i32 = w.trim().parse().map_err(|_| bad())?;
        let height: i32 = h.trim().parse().map_err(|_| bad())?;
        let density = match width {
            720 => 320,
            1080 => 480,
            1440 => 640,
            _ => return Err(format!("screen {s:?}: the width must be 720, 1080 or 1440")),
        };
        let screen = Screen {
            width,
            height,
            density,
        };
        // The layout needs room for its bars and a few rows; taller than 24:9 is not a phone.
        if !(1280..=1920).contains(&screen.layout_height()) {
            return Err(format!(
                "screen {s:?}: the height must be between {} and {} at that width",
                screen.to_px(1280),
                screen.to_px(1920)
            ));
        }
        Ok(screen)
    }
}

/// WeChat's light or dark look. Screenshots only: dumps carry no colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

impl std::str::FromStr for Theme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            other => Err(format!("unknown theme {other:?} (light|dark)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens_parse_and_scale_as_android_does() {
        assert_eq!("720x1608".parse::<Screen>(), Ok(Screen::HD));
        assert_eq!("1080x2400".parse::<Screen>(), Ok(Screen::FHD));
        assert_eq!("1440x3200".parse::<Screen>(), Ok(Screen::QHD));
        assert!("1000x2000".parse::<Screen>().is_err());
        assert!("720x900".parse::<Screen>().is_err());
        assert!("720".parse::<Screen>().is_err());
        // 40 dp: 80 px at xhdpi, 120 at xxhdpi, 160 at xxxhdpi.
        assert_eq!(
            [Screen::HD, Screen::FHD, Screen::QHD].map(|s| s.to_px(80)),
            [80, 120, 160]
        );
        assert_eq!(Screen::FHD.to_px(101), 152, "151.5 rounds up");
        assert_eq!(Screen::FHD.to_px(-101), -152);
        assert_eq!(Screen::FHD.layout_height(), 1600);
        assert_eq!(Screen::QHD.layout_height(), 1600);
        assert_eq!(Screen::HD.layout_height(), 1608);
        assert_eq!(Screen::FHD.to_layout(1500), 1000);
        assert_eq!(Screen::HD.dp(), (360, 804));
        assert_eq!(Screen::QHD.dp(), (360, 800));
    }
}
