//! Tapwire's device side: everything that touches a phone.
//!
//! Layout, from the wire up:
//! - [`transport`]: how shell commands reach a phone (the adb server, or adbd over TCP),
//!   and errors that say whether the phone may come back;
//! - [`dump`]: a uiautomator dump parsed into a compact tree;
//! - [`uimap`]: the TOML UI maps that say which node plays which role on a WeChat version;
//! - [`screen`]: recognising the screen and extracting rows and messages from a dump;
//! - [`reader`]: the [`ScreenReader`](reader::ScreenReader) seam through which the actor
//!   learns what is on screen; `reader/uitree.rs` reads it from the UI tree (the three
//!   modules above), a vision reader (screenshots and OCR) goes beside it;
//! - [`inspect`]: a UI map's roles boxed on a screenshot, and which are found, missing
//!   or ambiguous (`tapwire inspect`);
//! - [`draft`]: drafting a UI map for a build that has none, from dumps of its screens;
//! - [`tail`]: which messages on a chat screen are new, by aligning the conversation's
//!   remembered tail (its watermark) with what the screen shows;
//! - [`doctor`]: what a phone needs before `run` can drive it, each check with its fix;
//! - [`prepare`]: bringing WeChat's hidden tree back (a trusted accessibility service,
//!   animations off), recorded on the phone so that `restore` undoes exactly that;
//! - [`pacing`]: when a reply may go out, at a person's pace (typing time, gaps, an
//!   hourly cap per chat, quiet hours);
//! - [`input`]: typing text into the focused field (ADB keyboard, clipboard, `input text`);
//! - [`telemetry`]: what the device side counts for `/metrics` (ADB calls and their
//!   latency, dumps, screenshots, failed send checks), through the `metrics` facade;
//! - [`agent`]: the actor, one per phone, that owns the transport and puts the rest
//!   together. `agent/mod.rs` holds what the controller sees (configuration, errors, the
//!   `Sink` that stores readings, stats, `spawn`) and the run loop; `agent/scan.rs` finds
//!   news (the screen in front, badges and previews, chats opened by mistake);
//!   `agent/navigate.rs` gets into a chat and back (dialogs, scrolling);
//!   `agent/chat.rs` reads an open chat and records what is new with its watermark;
//!   `agent/send.rs` types replies and checks they went out.

pub mod agent;
pub mod doctor;
pub mod draft;
pub mod dump;
pub mod input;
pub mod inspect;
pub mod ocr;
pub mod pacing;
pub mod prepare;
pub mod reader;
pub mod screen;
pub mod tail;
pub mod telemetry;
pub mod transport;
pub mod uimap;

pub use dump::{Dump, DumpError, Rect};
pub use screen::{ScreenKind, ScreenReading, read_screen, read_screen_any};
pub use uimap::{UiMap, UiMapError, UiMaps, Version};
