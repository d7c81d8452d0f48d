//! Text cut to what a platform takes in one message: by UTF-8 bytes (WeCom, Feishu,
//! DingTalk count bytes) or by characters (iLink counts characters), never inside a
//! character, and at a line break where one falls in the second half of a piece, so
//! pieces read as whole lines without becoming tiny.

/// `text` in pieces of at most `max` bytes. Empty text is no pieces (platforms refuse
/// empty content). A limit smaller than one character gives that character its own piece.
pub fn bytes(text: &str, max: usize) -> Vec<&str> {
    pieces(text, |rest| {
        (rest.len() > max).then(|| floor_char_boundary(rest, max))
    })
}

/// `text` in pieces of at most `max` characters (at least one).
pub fn chars(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(1);
    pieces(text, |rest| {
        rest.char_indices().nth(max).map(|(end, _)| end)
    })
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    &text[..floor_char_boundary(text, max)]
}

/// The largest character boundary at or below `index` (`str::floor_char_boundary`,
/// which is not stable yet).
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut end = index.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Cuts while `limit` says where the rest is over the limit (a character boundary).
fn pieces(text: &str, limit: impl Fn(&str) -> Option<usize>) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(mut end) = limit(rest) {
        if let Some(newline) = rest[..end].rfind('\n')
            && newline + 1 > end / 2
        {
            end = newline + 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, after) = rest.split_at(end);
        pieces.push(piece);
        rest = after;
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_bytes_at_line_breaks_and_character_boundaries() {
        assert!(bytes("", 10).is_empty());
        assert_eq!(bytes("short", 10), ["short"]);
        // Three bytes a character: never cut inside one.
        let han = "值班表".repeat(4);
        let pieces = bytes(&han, 10);
        assert_eq!(pieces, ["值班表", "值班表", "值班表", "值班表"]);
        assert_eq!(pieces.concat(), han);
        // A line break in the second half wins over the byte limit.
        assert_eq!(bytes("line one\nline two", 12), ["line one\n", "line two"]);
        // One in the first half would make tiny pieces: cut at the limit instead.
        assert_eq!(bytes("a\nbcdefghijkl", 6), ["a\nbcde", "fghijk", "l"]);
        let long = "周一 张伟\n".repeat(400);
        let pieces = bytes(&long, 2048);
        assert!(pieces.iter().all(|p| p.len() <= 2048 && p.ends_with('\n')));
        assert_eq!(pieces.concat(), long);
        // A limit under one character still moves on.
        assert_eq!(bytes("值班", 2), ["值", "班"]);
    }

    #[test]
    fn by_characters() {
        assert!(chars("", 4).is_empty());
        assert_eq!(chars("你好世界", 4), ["你好世界"]);
        assert_eq!(chars("你好世界再见", 4), ["你好世界", "再见"]);
        assert_eq!(chars("ab\ncdef", 4), ["ab\n", "cdef"]);
        assert_eq!(chars("abc", 0), ["a", "b", "c"]);
    }

    #[test]
    fn truncated_at_a_character() {
        assert_eq!(truncated("你好", 4), "你");
        assert_eq!(truncated("你好", 6), "你好");
        assert_eq!(truncated("你好", 2), "");
    }

    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::config;

        proptest! {
            #![proptest_config(config())]

            /// Pieces are the text again, in order, none over the limit (but a character
            /// longer than the whole limit), none empty, each cut at a character.
            #[test]
            fn pieces_put_back_are_the_text(text in any::<String>(), max in 0usize..64) {
                let by_bytes = bytes(&text, max);
                prop_assert_eq!(by_bytes.concat(), text.clone());
                for piece in &by_bytes {
                    prop_assert!(!piece.is_empty());
                    prop_assert!(piece.len() <= max || piece.chars().count() == 1);
                }
                let by_chars = chars(&text, max);
                prop_assert_eq!(by_chars.concat(), text.clone());
                prop_assert!(by_chars.iter().all(|p| !p.is_empty() && p.chars().count() <= max.max(1)));
                let cut = truncated(&text, max);
                prop_assert!(text.starts_with(cut) && cut.len() <= max);
            }
        }
    }
}
