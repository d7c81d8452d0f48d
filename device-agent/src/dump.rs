//! A uiautomator window dump parsed into a compact, read-only tree.
//!
//! The dump is what `uiautomator dump /dev/tty` (or uiautomator2's `dump_hierarchy()`)
//! prints. Attributes are looked up by name, never by position, because the stock dumper
//! and uiautomator2 print different sets (`visible-to-user`, `drawing-order`, … exist only
//! in the latter). Only the attributes the reader uses are kept, so a 100 KB dump becomes a
//! few hundred small nodes.

use std::borrow::Cow;
use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Serialize, Serializer};

/// What Android prints after the XML when dumping to a tty (the typo is Android's).
const DUMP_TRAILER: &str = "UI hierchary dumped to:";

/// Messages uiautomator prints instead of a dump while the screen is changing.
const TRANSIENT_FAILURES: &[&str] = &[
    "could not get idle state",
    "null root node returned by UiTestAutomationBridge",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DumpError {
    /// uiautomator could not take the dump (the screen was animating); try again.
    #[error("uiautomator could not dump the screen right now ({0}); retry")]
    Transient(String),
    #[error("the dump holds no <hierarchy> element (it starts with {0:?})")]
    NoHierarchy(String),
    #[error("malformed dump at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("truncated dump: {open} element(s) still open at the end of the input")]
    Truncated { open: usize },
    #[error("bad bounds {value:?} at line {line}")]
    BadBounds { value: String, line: usize },
}

/// A rectangle in screen pixels, `[left,top][right,bottom]` as uiautomator prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

impl Rect {
    pub fn center(&self) -> (i32, i32) {
        ((self.left + self.right) / 2, (self.top + self.bottom) / 2)
    }
    pub fn width(&self) -> i32 {
        self.right - self.left
    }
    pub fn height(&self) -> i32 {
        self.bottom - self.top
    }
    pub fn is_empty(&self) -> bool {
        self.width() <= 0 || self.height() <= 0
    }
    pub fn contains(&self, other: &Rect) -> bool {
        other.left >= self.left
            && other.top >= self.top
            && other.right <= self.right
            && other.bottom <= self.bottom
    }

    fn parse(value: &str) -> Option<Rect> {
        // "[l,t][r,b]"
        let inner = value.strip_prefix('[')?.strip_suffix(']')?;
        let (first, second) = inner.split_once("][")?;
        let (l, t) = first.split_once(',')?;
        let (r, b) = second.split_once(',')?;
        Some(Rect {
            left: l.trim().parse().ok()?,
            top: t.trim().parse().ok()?,
            right: r.trim().parse().ok()?,
            bottom: b.trim().parse().ok()?,
        })
    }
}

impl fmt::Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{},{}][{},{}]",
            self.left, self.top, self.right, self.bottom
        )
    }
}

/// Serialised the way uiautomator prints it, `[l,t][r,b]`, so JSON readings stay compact
/// and can be compared with the dump by eye.
impl Serialize for Rect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

pub type NodeId = u32;

/// One `<node>` of the dump. Strings are unescaped (`&#10;` is a newline).
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub parent: Option<NodeId>,
    /// Depth below `<hierarchy>`: window roots are at depth 0.
    pub depth: u16,
    pub text: Box<str>,
    pub resource_id: Box<str>,
    pub class: Box<str>,
    pub package: Box<str>,
    pub content_desc: Box<str>,
    pub bounds: Rect,
    pub clickable: bool,
    pub long_clickable: bool,
    pub naf: bool,
    pub children: Vec<NodeId>,
}

impl Node {
    /// The part of the resource id after `:id/`, or the whole id when it has no package.
    pub fn short_id(&self) -> &str {
        match self.resource_id.split_once(":id/") {
            Some((_, name)) => name,
            None => &self.resource_id,
        }
    }
}

/// A parsed dump: nodes in document order (a node's descendants follow it contiguously).
#[derive(Debug, Clone, Default)]
pub struct Dump {
    nodes: Vec<Node>,
    /// Window roots: the direct children of `<hierarchy>`.
    windows: Vec<NodeId>,
}

impl Dump {
    /// Parses what `uiautomator dump /dev/tty` printed: XML, possibly followed by the
    /// "dumped to" trailer, possibly preceded by warnings.
    pub fn parse(raw: &str) -> Result<Dump, DumpError> {
        let start = match raw.find("<?xml").or_else(|| raw.find("<hierarchy")) {
            Some(start) => start,
            None => {
                if let Some(failure) = TRANSIENT_FAILURES.iter().find(|f| raw.contains(**f)) {
                    return Err(DumpError::Transient((*failure).to_string()));
                }
                let head: String = raw.trim().chars().take(80).collect();
                return Err(DumpError::NoHierarchy(head));
            }
        };
        let body = &raw[start..];
        let body = match body.rfind(DUMP_TRAILER) {
            Some(end) => &body[..end],
            None => body,
        };
        parse_xml(body)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }
    pub fn windows(&self) -> &[NodeId] {
        &self.windows
    }
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node and all its descendants, in document order.
    pub fn subtree(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let end = self.subtree_end(id);
        id..end
    }

    /// Descendants only (the node itself excluded).
    pub fn descendants(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let end = self.subtree_end(id);
        (id + 1)..end
    }

    /// One past the last descendant of `id`: nodes are stored in document order, so a
    /// subtree is a contiguous range that ends where the depth returns to the node's.
    pub fn subtree_end(&self, id: NodeId) -> NodeId {
        let depth = self.nodes[id as usize].depth;
        let mut end = id as usize + 1;
        while end < self.nodes.len() && self.nodes[end].depth > depth {
            end += 1;
        }
        end as NodeId
    }

    pub fn ancestors(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(self.nodes[id as usize].parent, move |p| {
            self.nodes[*p as usize].parent
        })
    }

    pub fn is_within(&self, id: NodeId, ancestor: NodeId) -> bool {
        id > ancestor && id < self.subtree_end(ancestor)
    }

    /// The window root that holds `id`.
    pub fn window_of(&self, id: NodeId) -> NodeId {
        self.ancestors(id).last().unwrap_or(id)
    }
}

fn parse_xml(xml: &str) -> Result<Dump, DumpError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut dump = Dump::default();
    // Stack of open <node> elements; `None` marks <hierarchy> and unknown elements.
    let mut stack: Vec<Option<NodeId>> = Vec::new();
    let mut seen_hierarchy = false;
    loop {
        let position = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            let at = reader.error_position() as usize;
            malformed(xml, at, e.to_string())
        })?;
        match event {
            Event::Start(start) => {
                let id = open_element(&mut dump, &stack, &start, xml, position)?;
                seen_hierarchy |= start.name().as_ref() == b"hierarchy";
                stack.push(id);
            }
            Event::Empty(start) => {
                open_element(&mut dump, &stack, &start, xml, position)?;
                seen_hierarchy |= start.name().as_ref() == b"hierarchy";
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(DumpError::Truncated { open: stack.len() });
    }
    if !seen_hierarchy {
        return Err(DumpError::NoHierarchy(xml.chars().take(80).collect()));
    }
    Ok(dump)
}

fn open_element(
    dump: &mut Dump,
    stack: &[Option<NodeId>],
    start: &BytesStart<'_>,
    xml: &str,
    position: usize,
) -> Result<Option<NodeId>, DumpError> {
    if start.name().as_ref() != b"node" {
        return Ok(None);
    }
    let parent = stack.last().copied().flatten();
    let depth = stack.iter().filter(|entry| entry.is_some()).count() as u16;
    let mut node = Node {
        parent,
        depth,
        ..Node::default()
    };
    // uiautomator never repeats an attribute; the duplicate check is quadratic per node.
    for attribute in start.attributes().with_checks(false) {
        let attribute =
            attribute.map_err(|e| malformed(xml, position, format!("bad attribute: {e}")))?;
        let value = || -> Result<Cow<'_, str>, DumpError> {
            attribute
                .unescape_value()
                .map_err(|e| malformed(xml, position, format!("bad attribute value: {e}")))
        };
        match attribute.key.as_ref() {
            b"text" => node.text = value()?.into(),
            b"resource-id" => node.resource_id = value()?.into(),
            b"class" => node.class = value()?.into(),
            b"package" => node.package = value()?.into(),
            b"content-desc" => node.content_desc = value()?.into(),
            b"clickable" => node.clickable = attribute.value.as_ref() == b"true",
            b"long-clickable" => node.long_clickable = attribute.value.as_ref() == b"true",
            b"NAF" => node.naf = attribute.value.as_ref() == b"true",
            b"bounds" => {
                let raw = value()?;
                node.bounds = Rect::parse(&raw).ok_or_else(|| DumpError::BadBounds {
                    value: raw.to_string(),
                    line: line_col(xml, position).0,
                })?;
            }
            _ => {}
        }
    }
    let id = dump.nodes.len() as NodeId;
    match parent {
        Some(parent) => dump.nodes[parent as usize].children.push(id),
        None => dump.windows.push(id),
    }
    dump.nodes.push(node);
    Ok(Some(id))
}

fn malformed(xml: &str, at: usize, message: String) -> DumpError {
    let (line, column) = line_col(xml, at);
    DumpError::Malformed {
        line,
        column,
        message,
    }
}

fn line_col(xml: &str, at: usize) -> (usize, usize) {
    let before = &xml.as_bytes()[..at.min(xml.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0"><node index="0" text="a&#10;b" resource-id="com.tencent.mm:id/x" class="android.widget.TextView" package="com.tencent.mm" content-desc="" clickable="true" bounds="[0,0][10,20]"><node index="0" text="" resource-id="" class="V" package="com.tencent.mm" content-desc="d" bounds="[1,2][3,4]" NAF="true" /></node></hierarchy>"#;

    #[test]
    fn parses_nodes_attributes_and_entities() {
        let dump = Dump::parse(SMALL).expect("parse");
        assert_eq!(dump.len(), 2);
        assert_eq!(dump.windows(), &[0]);
        let root = dump.node(0);
        assert_eq!(&*root.text, "a\nb");
        assert_eq!(root.short_id(), "x");
        assert!(root.clickable);
        assert_eq!(root.bounds.height(), 20);
        let child = dump.node(1);
        assert!(child.naf);
        assert_eq!(child.parent, Some(0));
        assert_eq!(&*child.content_desc, "d");
        assert_eq!(dump.subtree_end(0), 2);
        assert!(dump.is_within(1, 0));
    }

    #[test]
    fn strips_the_tty_trailer() {
        let raw = format!("{SMALL}UI hierchary dumped to: /dev/tty\n");
        assert_eq!(Dump::parse(&raw).expect("parse").len(), 2);
    }

    #[test]
    fn transient_failures_are_recognised() {
        let err = Dump::parse("ERROR: could not get idle state.\n").unwrap_err();
        assert!(matches!(err, DumpError::Transient(_)), "{err}");
        let err =
            Dump::parse("ERROR: null root node returned by UiTestAutomationBridge.").unwrap_err();
        assert!(matches!(err, DumpError::Transient(_)), "{err}");
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for cut in [40, 90, 150, 200, SMALL.len() - 20, SMALL.len() - 1] {
            let result = Dump::parse(&SMALL[..cut]);
            assert!(result.is_err(), "cut at {cut} parsed: {result:?}");
        }
    }

    #[test]
    fn malformed_input_names_line_and_column() {
        let raw = "<hierarchy>\n<node text=\"x\" bounds=\"[0,0][1,1]\">\n</nod>\n</hierarchy>";
        match Dump::parse(raw) {
            Err(DumpError::Malformed { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a malformed error, got {other:?}"),
        }
    }

    #[test]
    fn bad_bounds_are_reported() {
        let raw = "<hierarchy><node bounds=\"[0,0][x,1]\"/></hierarchy>";
        assert!(matches!(Dump::parse(raw), Err(DumpError::BadBounds { .. })));
    }

    #[test]
    fn garbage_is_not_a_hierarchy() {
        assert!(matches!(
            Dump::parse("sh: uiautomator: not found"),
            Err(DumpError::NoHierarchy(_))
        ));
    }
}
