//! Text formats: the last pipeline stage (DESIGN.md §3). Each phone and adapter says which
//! format it shows ([`TextFormat`]); WeChat and QQ show markdown as literal asterisks and
//! pound signs, so replies written in markdown (most LLM output) are degraded there to
//! readable plain text, while a target that renders markdown gets the text unchanged.
//!
//! Most messages are plain chat text, so the first rule is to leave plain text alone:
//! text with no markdown syntax character is returned as it came (only trimmed at its
//! ends), and the renderer is written to reproduce plain text faithfully too: it follows
//! the author's line breaks and blank lines from the source, keeps `*` and `~` that sit
//! inside words (`2*3*4`, `__init__.py`, `周一~周五`), and keeps the delimiter of an
//! ordered list (`1)` stays `1)`).

use std::ops::Range;

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

/// What a target shows of the text it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// Markdown shows literally: it is degraded to plain text.
    Plain,
    /// Markdown is rendered by the platform: the text goes as it is.
    Markdown,
}

/// Characters without which a text cannot contain markdown that changes what a reader
/// sees. Digits, `.` and `)` are left out on purpose: an ordered list renders to itself.
const MARKDOWN_CHARS: &[char] = &[
    '\\', '`', '*', '_', '~', '#', '[', '<', '>', '|', '&', '-', '+', '=',
];

/// `text` as it should be sent to a target that shows `format`.
pub fn for_format(format: TextFormat, text: &str) -> String {
    if format == TextFormat::Markdown {
        return text.to_string();
    }
    if !text.contains(MARKDOWN_CHARS) {
        return text.trim().to_string();
    }
    markdown_to_plain(text)
}

/// Markdown degraded to plain text that reads well in a chat bubble.
pub fn markdown_to_plain(text: &str) -> String {
    // Subscript is enabled only so that a single `~` never means strikethrough (Chinese
    // writes ranges as `周一~周五`); subscript itself is rendered back literally.
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SUBSCRIPT;
    let mut renderer = Renderer::new(text);
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        renderer.event(event, range);
    }
    renderer.finish()
}

/// A container whose lines carry a prefix.
enum Container {
    Quote,
    /// A list item: continuation lines are indented under the marker.
    Item,
}

/// An open list: `Some(next number)` when ordered.
struct List {
    next: Option<u64>,
}

/// An open inline element whose rendering needs its text first.
enum Capture {
    Link { url: String, autolink: bool },
    Image { url: String },
    Cell,
}

struct Renderer<'a> {
    src: &'a str,
    out: String,
    containers: Vec<Container>,
    lists: Vec<List>,
    /// Text of open links, images and table cells, innermost last.
    captures: Vec<(Capture, String)>,
    /// Cells of the table row being read.
    row: Vec<String>,
    /// For each open emphasis: the closing delimiter to write back when it was not
    /// meant as markup.
    literal_closers: Vec<Option<&'a str>>,
    code_block: Option<String>,
    /// Raw HTML of the open HTML block: its tags are stripped once it is whole.
    html_block: Option<String>,
    /// A list marker was just written: the item's first block goes on the marker's line.
    after_marker: bool,
    /// Line breaks owed before the next content: 1 = new line, 2 = blank line between.
    pending: usize,
    /// Prefix of the blank line owed: that of the containers around the block that asked
    /// for it, not of the quote that block may open.
    blank_prefix: String,
    at_line_start: bool,
    /// Source offset where the last rendered content ended: the source between it and the
    /// next block says whether the author left a blank line.
    last_end: usize,
}

impl<'a> Renderer<'a> {
    fn new(src: &'a str) -> Self {
        Renderer {
            src,
            out: String::with_capacity(src.len()),
            containers: Vec::new(),
            lists: Vec::new(),
            captures: Vec::new(),
            row: Vec::new(),
            literal_closers: Vec::new(),
            code_block: None,
            html_block: None,
            after_marker: false,
            pending: 0,
            blank_prefix: String::new(),
            at_line_start: true,
            last_end: 0,
        }
    }

    fn event(&mut self, event: Event<'a>, range: Range<usize>) {
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag, range),
            Event::Text(text) => {
                if let Some(code) = self.code_block.as_mut() {
                    code.push_str(&text);
                } else {
                    self.write(&text);
                }
                self.advance_past(range);
            }
            Event::Code(text) | Event::InlineMath(text) | Event::DisplayMath(text) => {
                self.write(&text);
                self.advance_past(range);
            }
            // A block of raw HTML: its tags go, its text stays.
            Event::Html(html) => {
                match self.html_block.as_mut() {
                    Some(block) => block.push_str(&html),
                    None => self.write(strip_tags(&html).trim_matches('\n')),
                }
                self.advance_past(range);
            }
            Event::InlineHtml(html) => {
                let tag = html.trim().to_ascii_lowercase();
                if matches!(tag.as_str(), "<br>" | "<br/>" | "<br />") {
                    self.write("\n");
                }
            }
            Event::FootnoteReference(name) => self.write(&format!("[^{name}]")),
            Event::SoftBreak | Event::HardBreak => self.write("\n"),
            Event::Rule => {
                self.block(range.start);
                let rule = self.src[range.clone()].trim();
                self.write(rule);
                self.advance_past(range);
            }
            Event::TaskListMarker(done) => self.write(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'a>, range: Range<usize>) {
        match tag {
            Tag::HtmlBlock => {
                self.block(range.start);
                self.html_block = Some(String::new());
            }
            Tag::Paragraph
            | Tag::Heading { .. }
            | Tag::Table(_)
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => self.block(range.start),
            Tag::BlockQuote(_) => {
                self.block(range.start);
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(_) => {
                self.block(range.start);
                self.code_block = Some(String::new());
            }
            Tag::List(start) => {
                self.block(range.start);
                self.lists.push(List { next: start });
            }
            Tag::Item => {
                self.block(range.start);
                let marker = match self.lists.last_mut().and_then(|list| list.next.as_mut()) {
                    Some(next) => {
                        let number = *next;
                        *next += 1;
                        format!("{number}{} ", ordered_delimiter(&self.src[range.start..]))
                    }
                    None => "• ".to_string(),
                };
                self.write(&marker);
                self.after_marker = true;
                self.containers.push(Container::Item);
            }
            Tag::TableHead | Tag::TableRow => {
                // One row per line, whatever the delimiter row between them.
                if !self.out.is_empty() {
                    self.pending = self.pending.max(1);
                }
                self.row.clear();
            }
            Tag::TableCell => self.captures.push((Capture::Cell, String::new())),
            Tag::Emphasis | Tag::Strong | Tag::Strikethrough => {
                let closer = self.literal_delimiters(&range).map(|(open, close)| {
                    self.write(open);
                    close
                });
                self.literal_closers.push(closer);
            }
            // Only a single `~` parses as subscript (see `markdown_to_plain`): write it back.
            Tag::Subscript | Tag::Superscript => {
                let src = &self.src[range];
                let delimiter = &src[..src.len() - src.trim_start_matches(['~', '^']).len()];
                let closer = &src[src.len() - delimiter.len()..];
                self.write(delimiter);
                self.literal_closers.push(Some(closer));
            }
            Tag::Link {
                link_type,
                dest_url,
                ..
            } => {
                let autolink = matches!(link_type, LinkType::Autolink | LinkType::Email);
                let url = dest_url.to_string();
                self.captures
                    .push((Capture::Link { url, autolink }, String::new()));
            }
            Tag::Image { dest_url, .. } => {
                let url = dest_url.to_string();
                self.captures.push((Capture::Image { url }, String::new()));
            }
        }
    }

    fn end(&mut self, tag: TagEnd, range: Range<usize>) {
        match tag {
            TagEnd::BlockQuote(_) | TagEnd::Item => {
                self.containers.pop();
            }
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::CodeBlock => {
                if let Some(code) = self.code_block.take() {
                    let code = code.strip_suffix('\n').unwrap_or(&code);
                    self.write(code);
                }
            }
            TagEnd::HtmlBlock => {
                if let Some(html) = self.html_block.take() {
                    self.write(strip_tags(&html).trim_matches('\n'));
                }
            }
            TagEnd::TableCell => {
                if let Some((_, cell)) = self.captures.pop() {
                    self.row.push(cell.trim().to_string());
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                let row = std::mem::take(&mut self.row).join(" | ");
                self.write(&row);
            }
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Subscript
            | TagEnd::Superscript => {
                if let Some(Some(closer)) = self.literal_closers.pop() {
                    self.write(closer);
                }
            }
            TagEnd::Link => {
                if let Some((Capture::Link { url, autolink }, text)) = self.captures.pop() {
                    let text = text.trim();
                    if autolink || text.is_empty() || text == url {
                        self.write(&url);
                    } else {
                        self.write(&format!("{text} ({url})"));
                    }
                }
            }
            TagEnd::Image => {
                if let Some((Capture::Image { url }, alt)) = self.captures.pop() {
                    let alt = alt.trim();
                    if alt.is_empty() {
                        self.write(&format!("[图片] {url}"));
                    } else {
                        self.write(&format!("{alt} {url}"));
                    }
                }
            }
            _ => {}
        }
        // A block ends where its source stops, trailing blank lines aside.
        if !matches!(tag, TagEnd::Link | TagEnd::Image) {
            self.advance_past(range);
        }
    }

    /// A block starts at `start`: it goes on a new line, after a blank line when the
    /// author left one (one blank line however many they left).
    fn block(&mut self, start: usize) {
        if self.out.is_empty() || self.after_marker {
            return;
        }
        let gap = self.src.get(self.last_end..start).unwrap_or("");
        let newlines = gap.matches('\n').count().clamp(1, 2);
        if newlines > self.pending {
            self.pending = newlines;
            self.blank_prefix = self.prefix();
        }
    }

    /// Marks the source of `range` as rendered, up to its trailing whitespace: the line
    /// breaks after it belong to the gap before the next block.
    fn advance_past(&mut self, range: Range<usize>) {
        let start = range.start;
        let end = self
            .src
            .get(range)
            .map_or(start, |source| start + source.trim_end().len());
        self.last_end = self.last_end.max(end);
    }

    /// For emphasis that only looks like markup: its opening and closing delimiters.
    /// `*` inside an ASCII word (`2*3*4`, `__init__.py`) is kept, as is `~~` next to any
    /// letter (`哈哈~~好的~~`); `**重点**` between CJK characters is still emphasis, as
    /// LLMs write it.
    fn literal_delimiters(&self, range: &Range<usize>) -> Option<(&'a str, &'a str)> {
        let src: &'a str = self.src;
        let element = src.get(range.clone())?;
        let first = element.chars().next()?;
        if !matches!(first, '*' | '_' | '~') {
            return None;
        }
        let open_len = element.len() - element.trim_start_matches(first).len();
        let close_len = element.len() - element.trim_end_matches(first).len();
        let before = src[..range.start].chars().next_back();
        let mut after = src[range.end..].chars();
        let (next, next2) = (after.next(), after.next());
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let letter = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let literal = if first == '~' {
            letter(before) || letter(next)
        } else {
            word(before)
                || word(next)
                // A file name or path continues past a dot or slash: `__init__.py`.
                || (matches!(next, Some('.' | '/')) && word(next2))
        };
        literal.then(|| {
            let open = &element[..open_len.min(element.len())];
            let close = &element[element.len() - close_len.min(element.len())..];
            (open, close)
        })
    }

    /// Writes rendered text: into the innermost capture, or onto the output, where each
    /// line gets the prefix of the containers it is in.
    fn write(&mut self, text: &str) {
        if let Some((_, buffer)) = self.captures.last_mut() {
            buffer.push_str(text);
            return;
        }
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                self.out.push('\n');
                self.at_line_start = true;
            }
            if !line.is_empty() {
                self.after_marker = false;
                self.flush_pending();
                if self.at_line_start {
                    let prefix = self.prefix();
                    self.out.push_str(&prefix);
                    self.at_line_start = false;
                }
                self.out.push_str(line);
            }
        }
    }

    fn flush_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending == 0 || self.out.is_empty() {
            return;
        }
        if !self.at_line_start {
            self.out.push('\n');
            self.at_line_start = true;
        }
        if pending > 1 {
            self.out.push_str(self.blank_prefix.trim_end());
            self.out.push('\n');
        }
    }

    /// `> ` per enclosing quote, two spaces per enclosing list item.
    fn prefix(&self) -> String {
        self.containers
            .iter()
            .map(|container| match container {
                Container::Quote => "> ",
                Container::Item => "  ",
            })
            .collect()
    }

    fn finish(self) -> String {
        let lines: Vec<&str> = self.out.lines().map(str::trim_end).collect();
        lines.join("\n").trim().to_string()
    }
}

/// The delimiter of an ordered list item whose source starts at `item`: `.` or `)`.
fn ordered_delimiter(item: &str) -> char {
    let after_digits = item
        .trim_start()
        .trim_start_matches(|c: char| c.is_ascii_digit());
    match after_digits.chars().next() {
        Some(')') => ')',
        _ => '.',
    }
}

/// The text of raw HTML with its tags and comments removed.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let tag = &rest[open..];
        let close = if tag.starts_with("<!--") {
            tag.find("-->").map(|end| end + 3)
        } else {
            tag.find('>').map(|end| end + 1)
        };
        match close {
            Some(close) => rest = &tag[close..],
            // An unclosed `<` is text.
            None => {
                text.push_str(tag);
                rest = "";
            }
        }
    }
    text.push_str(rest);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_comes_out_unchanged() {
        let plain = [
            "2*3*4 = 24",
            "file_name_here",
            "a_b_c",
            "你好，明天下午三点开会。",
            "收到 👍🎉",
            "#hashtag and #话题#",
            "1) first",
            "1) first\n2) second",
            "1. 买菜\n2. 做饭",
            "2024-11-24 开会",
            "a - b - c",
            "价格 5~10 元",
            "周一~周五上班，周六~周日休息",
            "哈哈~~好的~~",
            "see __init__.py and *.rs",
            "x = a * b * c",
            "C++ rocks; 3 + 4 = 7",
            "Tom & Jerry",
            "[微笑][捂脸] 好的",
            "a < b and c > d",
            "I <3 you",
            "line one\nline two\nline three",
            "para one\n\npara two",
            "> quoted line",
            "---",
            "https://example.com/a_b_c?x=1&y=2",
            "email me: a_b@example.com",
            "  spaces   inside  stay",
        ];
        for text in plain {
            assert_eq!(for_format(TextFormat::Plain, text), text.trim(), "{text:?}");
            // The renderer alone is faithful too, for when a message mixes in markdown.
            assert_eq!(markdown_to_plain(text), text.trim(), "{text:?}");
            assert_eq!(for_format(TextFormat::Plain, text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn text_without_markdown_is_only_trimmed_at_its_ends() {
        assert_eq!(for_format(TextFormat::Plain, "  你好  \n"), "你好");
        assert_eq!(
            for_format(TextFormat::Plain, "a\n\n\n  b\tc"),
            "a\n\n\n  b\tc",
            "inner spacing kept"
        );
    }

    #[test]
    fn markdown_targets_get_markdown_unchanged() {
        let text = "# Title\n\n**bold** and [link](https://x.y)  ";
        assert_eq!(for_format(TextFormat::Markdown, text), text);
    }

    #[test]
    fn markdown_is_degraded_for_wechat() {
        let cases: &[(&str, &str)] = &[
            // headings
            ("# Title\n\nbody", "Title\n\nbody"),
            ("## 周报\n- 完成A", "周报\n• 完成A"),
            ("Title\n=====\n\ntext", "Title\n\ntext"),
            // emphasis, strong, strikethrough
            ("*em* and **strong**", "em and strong"),
            ("这是**重点**内容", "这是重点内容"),
            ("_a_ __b__ ~~gone~~", "a b gone"),
            ("***both***", "both"),
            // inline code and code blocks
            ("run `cargo test` now", "run cargo test now"),
            (
                "```rust\nfn main() {\n    println!(\"hi\");\n}\n```",
                "fn main() {\n    println!(\"hi\");\n}",
            ),
            (
                "text *x*\n\n    indented code\n\nmore",
                "text x\n\nindented code\n\nmore",
            ),
            // links and images
            (
                "see [docs](https://x.y/d) now",
                "see docs (https://x.y/d) now",
            ),
            ("[https://x.y](https://x.y)", "https://x.y"),
            ("<https://x.y/a>", "https://x.y/a"),
            ("<me@x.y>", "me@x.y"),
            ("[ref][1]\n\n[1]: https://x.y/r", "ref (https://x.y/r)"),
            ("![](https://x.y/a.png)", "[图片] https://x.y/a.png"),
            ("![架构图](https://x.y/a.png)", "架构图 https://x.y/a.png"),
            // lists
            ("- a\n- b\n* c", "• a\n• b\n• c"),
            ("- a\n- b", "• a\n• b"),
            ("3. c\n4. d", "3. c\n4. d"),
            ("1. *a*\n1. b\n1. c", "1. a\n2. b\n3. c"),
            ("- a\n  - b\n    - c\n- d", "• a\n  • b\n    • c\n• d"),
            ("1. a\n   - b", "1. a\n  • b"),
            ("- a\n\n- b", "• a\n\n• b"),
            ("Items:\n- a\n- b", "Items:\n• a\n• b"),
            ("- long item\n  continued", "• long item\n  continued"),
            // blockquotes
            ("> a\n> b", "> a\n> b"),
            ("> a\n>\n> b", "> a\n>\n> b"),
            ("> outer\n>> inner", "> outer\n> > inner"),
            ("> - x", "> • x"),
            ("- a\n\n> q *x*", "• a\n\n> q x"),
            ("> a\n>\n> > b", "> a\n>\n> > b"),
            // tables
            (
                "| name | qty |\n|------|----:|\n| 苹果 | 3 |\n| pear | 10 |",
                "name | qty\n苹果 | 3\npear | 10",
            ),
            // paragraphs and breaks
            ("a\n\n\n\nb *c*", "a\n\nb c"),
            ("line *one*\nline two", "line one\nline two"),
            ("hard  \nbreak *x*", "hard\nbreak x"),
            ("back\\\nslash *x*", "back\nslash x"),
            // html
            ("<b>bold</b> text", "bold text"),
            ("a<br>b", "a\nb"),
            ("<div>\nblock <i>html</i>\n</div>", "block html"),
            ("<!-- note -->\nvisible *x*", "visible x"),
            // escapes and entities
            ("\\*not em\\*", "*not em*"),
            ("AT&amp;T", "AT&T"),
            // rules and whitespace at the ends
            ("a\n\n***\n\nb", "a\n\n***\n\nb"),
            ("  **x**  \n\n", "x"),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(input, expected)| {
                let got = for_format(TextFormat::Plain, input);
                (got != *expected)
                    .then(|| format!("{input:?}\n  got      {got:?}\n  expected {expected:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn output_has_no_trailing_whitespace() {
        let text = "# T  \n\n- a  \n-\n\n> \n\n```\ncode   \n```\n\n";
        let out = for_format(TextFormat::Plain, text);
        for line in out.lines() {
            assert_eq!(line, line.trim_end(), "{out:?}");
        }
        assert_eq!(out, out.trim());
    }
}
