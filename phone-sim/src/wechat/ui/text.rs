//! Text measured as WeChat lays it out, in units where an ASCII character counts 1 and any
//! other (CJK) 2, since a CJK glyph is about twice as wide. Dumps take their bounds from these
//! widths and screenshots fit the real glyphs into the same widths, so the two agree whether a
//! font is installed or not.

use super::node::TextSize;

/// Pixels per unit in WeChat's type sizes, measured on the real dumps: tab labels and time
/// dividers.
pub(super) const SMALL_TEXT_PX: i32 = 11;
/// Row times and unread badges.
pub(super) const TIME_TEXT_PX: i32 = 12;
/// System lines in a chat (recalls, `X加入了群聊`).
pub(super) const SYSTEM_TEXT_PX: i32 = 13;
/// Titles, names and messages.
pub(super) const BODY_TEXT_PX: i32 = 14;
/// Lines of wrapped text (messages, system lines) are this far apart.
pub const LINE_H: i32 = 41;

// The same sizes for the renderer. The real 8.0.x dump measures 14 layout px per unit for
// messages, a 28 px CJK glyph: 14 dp at this density. (WeChat's default is 17 dp; the phone
// the dumps came from has a smaller font setting, or a larger display size.)
pub const SMALL: TextSize = TextSize {
    unit_px: SMALL_TEXT_PX,
    line_h: 30,
};
pub const TIME: TextSize = TextSize {
    unit_px: TIME_TEXT_PX,
    line_h: 32,
};
pub const SYSTEM: TextSize = TextSize {
    unit_px: SYSTEM_TEXT_PX,
    line_h: LINE_H,
};
pub const BODY: TextSize = TextSize {
    unit_px: BODY_TEXT_PX,
    line_h: LINE_H,
};

/// Characters that join or modify the one before and take no room of their own: variation
/// selectors, the zero-width joiner and space, skin-tone modifiers, the keycap mark.
pub fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}' | '\u{FE0F}' | '\u{200B}' | '\u{200D}' | '\u{20E3}'
    ) || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn char_units(c: char) -> i32 {
    if c.is_ascii() {
        1
    } else if is_zero_width(c) {
        0
    } else {
        2
    }
}

pub fn width_in_units(s: &str) -> i32 {
    s.chars().map(char_units).sum()
}

/// Wraps text at `max_units` per line, keeping the text's own line breaks.
pub fn wrap(text: &str, max_units: i32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_units = 0;
        for ch in paragraph.chars() {
            let units = char_units(ch);
            if line_units + units > max_units && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_units = 0;
            }
            line.push(ch);
            line_units += units;
        }
        lines.push(line);
    }
    lines
}

/// Shortens to `max_units` on one line with WeChat's trailing `…`.
pub(super) fn ellipsize(text: &str, max_units: i32) -> String {
    const ELLIPSIS: char = '…';
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if width_in_units(&flat) <= max_units {
        return flat;
    }
    let mut out = String::new();
    let mut out_units = 0;
    for ch in flat.chars() {
        let units = char_units(ch);
        if out_units + units > max_units - char_units(ELLIPSIS) {
            break;
        }
        out.push(ch);
        out_units += units;
    }
    out.push(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_counts_double() {
        assert_eq!(width_in_units("ab你好"), 6);
        assert_eq!(wrap("你好你好", 4), vec!["你好", "你好"]);
        assert_eq!(wrap("a\nb", 10), vec!["a", "b"]);
        assert_eq!(ellipsize("abcdef", 6), "abcdef");
        assert_eq!(ellipsize("abc\ndefg", 6), "abc …");
        assert_eq!(ellipsize("你好你好", 6), "你好…");
        // A keycap, a heart with its emoji selector, a thumb with its skin tone: one glyph each.
        assert_eq!(width_in_units("1\u{FE0F}\u{20E3}"), 1);
        assert_eq!(width_in_units("❤\u{FE0F}👍\u{1F3FB}"), 4);
    }
}
