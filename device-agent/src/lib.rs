//! Tapwire's device side: everything that touches a phone.
//!
//! Layout, from the wire up:
//! - [`dump`]: a uiautomator dump parsed into a compact tree;
//! - [`uimap`]: the TOML UI maps that say which node plays which role on a WeChat version;
//! - [`screen`]: recognising the screen and extracting rows and messages from a dump.

pub mod agent;
pub mod dump;
pub mod input;
pub mod reader;
pub mod screen;
pub mod tail;
pub mod transport;
pub mod uimap;

pub use dump::{Dump, DumpError, Rect};
pub use screen::{ScreenKind, ScreenReading, read_screen, read_screen_any};
pub use uimap::{UiMap, UiMapError, UiMaps, Version};
