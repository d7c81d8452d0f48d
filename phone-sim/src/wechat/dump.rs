//! Serialises the view tree the way uiautomator does.
//!
//! Two attribute sets: "modern" is what the January 2026 fixtures carry (uiautomator2's
//! dumper: `visible-to-user`, `drawing-order`, `hint`, `display-id`, pretty-printed), "stock"
//! is what `uiautomator dump` prints on older Android (one line, no such attributes).

use serde::{Deserialize, Serialize};

use super::ui::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AttrSet {
    #[default]
    Modern,
    Stock,
}

impl std::str::FromStr for AttrSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "modern" => Ok(AttrSet::Modern),
            "stock" => Ok(AttrSet::Stock),
            other => Err(format!("unknown attribute set {other:?} (modern|stock)")),
        }
    }
}

pub const XML_DECL: &str = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>";

/// Escapes an attribute value. Like the real dumps, a value with `"` but no `'` is written
/// in single quotes instead of escaping the double quotes.
fn attr(out: &mut String, name: &str, value: &str) {
    let single = value.contains('"') && !value.contains('\'');
    let q = if single { '\'' } else { '"' };
    out.push(' ');
    out.push_str(name);
    out.push('=');
    out.push(q);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if !single => out.push_str("&quot;"),
            '\'' if single => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            // XML 1.0 cannot carry other control characters at all; Android prints '?'.
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out.push(q);
}

fn b(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

fn write_node(out: &mut String, node: &Node, index: u32, depth: usize, set: AttrSet) {
    let pretty = set == AttrSet::Modern;
    if pretty {
        out.push_str(&"  ".repeat(depth));
    }
    out.push_str("<node");
    if node.naf {
        attr(out, "NAF", "true");
    }
    attr(out, "index", &node.index.unwrap_or(index).to_string());
    attr(out, "text", &node.text);
    attr(out, "resource-id", &node.id);
    attr(out, "class", node.class);
    attr(out, "package", node.package);
    attr(out, "content-desc", &node.desc);
    attr(out, "checkable", b(node.checkable));
    attr(out, "checked", b(node.checked));
    attr(out, "clickable", b(node.clickable));
    attr(out, "enabled", b(node.enabled));
    attr(out, "focusable", b(node.focusable));
    attr(out, "focused", b(node.focused));
    attr(out, "scrollable", b(node.scrollable));
    attr(out, "long-clickable", b(node.long_clickable));
    attr(out, "password", b(node.password));
    attr(out, "selected", b(node.selected));
    if pretty {
        attr(out, "visible-to-user", "true");
    }
    let r = node.bounds;
    attr(
        out,
        "bounds",
        &format!("[{},{}][{},{}]", r.left, r.top, r.right, r.bottom),
    );
    if pretty {
        attr(out, "drawing-order", &node.drawing_order.to_string());
        attr(out, "hint", "");
        attr(out, "display-id", "0");
    }
    if node.children.is_empty() {
        out.push_str(" />");
        if pretty {
            out.push('\n');
        }
        return;
    }
    out.push('>');
    if pretty {
        out.push('\n');
    }
    for (i, c) in node.children.iter().enumerate() {
        write_node(out, c, i as u32, depth + 1, set);
    }
    if pretty {
        out.push_str(&"  ".repeat(depth));
    }
    out.push_str("</node>");
    if pretty {
        out.push('\n');
    }
}

/// The whole dump, without a trailing newline (uiautomator writes none).
pub fn to_xml(windows: &[Node], set: AttrSet) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(XML_DECL);
    if set == AttrSet::Modern {
        out.push('\n');
    }
    out.push_str("<hierarchy rotation=\"0\">");
    if set == AttrSet::Modern {
        out.push('\n');
    }
    for w in windows {
        write_node(&mut out, w, 0, 1, set);
    }
    out.push_str("</hierarchy>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_the_real_dumps() {
        let mut s = String::new();
        attr(&mut s, "text", "\"Tom\"加入了群聊");
        assert_eq!(s, " text='\"Tom\"加入了群聊'");
        let mut s = String::new();
        attr(&mut s, "text", "a<b>&\"'\nc");
        assert_eq!(s, " text=\"a&lt;b&gt;&amp;&quot;'&#10;c\"");
    }
}
