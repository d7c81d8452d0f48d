//! The WeChat model.
//!
//! - [`model`]: chats, messages, the current screen, input focus, pop-ups, notifications.
//! - [`ui`]: the view tree built from the model (geometry copied from real dumps), one file
//!   per part of the screen.
//! - [`dump`]: uiautomator XML from that tree.
//! - [`render`]: PNG screenshots from that tree.
//! - [`ids`]: every resource id in that tree, from data: roles from the UI map
//!   (`ui-maps/`), the views around them from the sim's layout file (`phone-sim/layouts/`).
//!
//! Also here: [`hides_tree`], the version from which WeChat hides its tree from uiautomator.

pub mod dump;
pub mod ids;
pub mod model;
pub mod render;
pub mod ui;

/// Parses `8.0.50` into comparable parts; missing or non-numeric parts count as 0.
pub fn version_parts(v: &str) -> Vec<u32> {
    v.split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect()
}

/// Builds from 8.0.55 on hide their view tree from uiautomator (DESIGN §4).
pub fn hides_tree(version: &str) -> bool {
    let v = version_parts(version);
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    (get(0), get(1), get(2)) >= (8, 0, 55)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hidden_tree_from_8_0_55() {
        assert!(!super::hides_tree("8.0.50"));
        assert!(super::hides_tree("8.0.55"));
        assert!(super::hides_tree("8.0.61"));
        assert!(super::hides_tree("8.1.0"));
        assert!(!super::hides_tree("7.0.21"));
    }
}
