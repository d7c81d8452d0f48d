//! WeChat's colours in each theme.
//!
//! Source: WeUI, Tencent's design system for WeChat (`Tencent/weui`,
//! `src/style/base/theme/vars/light.less` and `dark.less`): `BG-0` the chat background
//! (#EDEDED / #111111), `BG-1` bars (#F7F7F7 / #1E1E1E), `BG-2` lists and others' bubbles
//! (#FFFFFF / #191919), `BG-5` dark cards (#2C2C2C), `LIGHTGREEN` own bubbles (#95EC69 /
//! #3EB575), `BRAND` #07C160, `RED` #FA5151, `ORANGE` red packets (#FA9D3B / #C87D2F), `LINK`
//! (#576B95 / #7D90A9), and the text colours `FG-0` (black at 90 %, white at 80 %), `FG-1`
//! (50 %), `FG-2` (30 %), here mixed onto the background they sit on (#191919 text on white,
//! #D5D5D5 on the dark bubble, #B2B2B2 time dividers). Approximated, not from WeUI: the
//! previews' #9E9E9E (kept from the first screenshots), own-bubble text in the dark theme
//! (dark, as on the light green), the red packet's footer, icon and picture placeholders.

use crate::display::Theme;
use crate::wechat::ui::{
    BADGE_RED, BAR_GREY, CHAT_BACKGROUND, Ink, OWN_BUBBLE_GREEN, TEXT_DARK, TEXT_GREY,
    WECHAT_GREEN, WHITE,
};

#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub theme: Theme,
}

impl Palette {
    fn dark(&self) -> bool {
        self.theme == Theme::Dark
    }

    fn pick(&self, light: u32, dark: u32) -> u32 {
        if self.dark() { dark } else { light }
    }

    pub fn ink(&self, ink: Ink) -> u32 {
        match ink {
            Ink::ChatBackground => self.pick(CHAT_BACKGROUND, 0x111111),
            Ink::ListBackground => self.pick(WHITE, 0x191919),
            Ink::PinnedRow | Ink::Bar => self.pick(BAR_GREY, 0x1E1E1E),
            Ink::Separator => self.pick(0xE5E5E5, 0x2A2A2A),
            Ink::Dialog => self.pick(WHITE, 0x2C2C2C),
            Ink::Text => self.pick(TEXT_DARK, 0xD5D5D5),
            Ink::TextGrey => self.pick(TEXT_GREY, 0x8C8C8C),
            Ink::TextFaint => self.pick(0xB2B2B2, 0x5F5F5F),
            Ink::Brand => WECHAT_GREEN,
            Ink::Link => self.pick(0x576B95, 0x7D90A9),
            Ink::OnColour => self.pick(WHITE, 0xF2F2F2),
            Ink::RedPacketLabel => self.pick(0xB2B2B2, 0x7F7F7F),
            Ink::Wallpaper => 0x2B4A6F,
            Ink::GestureHandle => self.pick(0x333333, 0xCCCCCC),
            Ink::AccessibilityButton => 0x5F6368,
        }
    }

    pub fn bubble(&self, own: bool) -> u32 {
        match (own, self.dark()) {
            (true, false) => OWN_BUBBLE_GREEN,
            (true, true) => 0x3EB575,
            (false, false) => WHITE,
            (false, true) => 0x2C2C2C,
        }
    }

    pub fn bubble_text(&self, own: bool) -> u32 {
        match (own, self.dark()) {
            (_, false) => TEXT_DARK,
            (true, true) => 0x0F0F0F,
            (false, true) => 0xD5D5D5,
        }
    }

    pub fn field(&self) -> u32 {
        self.pick(WHITE, 0x2C2C2C)
    }

    pub fn red(&self) -> u32 {
        BADGE_RED
    }

    pub fn icon(&self) -> u32 {
        self.pick(0x181818, 0xCFCFCF)
    }

    pub fn red_packet(&self) -> u32 {
        self.pick(0xFA9D3B, 0xC87D2F)
    }

    pub fn red_packet_footer(&self) -> u32 {
        self.pick(WHITE, 0x2C2C2C)
    }

    /// A picture's placeholder: a soft vertical gradient, as a blurred photo looks.
    pub fn picture(&self) -> (u32, u32) {
        self.pick2((0xC7D3DC, 0x8A9BA8), (0x4A535A, 0x2E3438))
    }

    fn pick2(&self, light: (u32, u32), dark: (u32, u32)) -> (u32, u32) {
        if self.dark() { dark } else { light }
    }
}
