//! The screen read from the tree while WeChat shows it, from screenshots while it hides it
//! (`mode = "auto"`, DESIGN.md §4): WeChat 8.0.55+ wipes its nodes unless a trusted
//! accessibility service runs, and that can change under a running phone (the user turns
//! the service off, an update changes WeChat's list, the service comes back).
//!
//! The tree is preferred because its texts are exact and a dump is cheaper than OCR; a
//! hidden dump switches to the vision reader at once (the same read answers from a
//! screenshot, so the actor never sees the hidden tree), and while on vision one dump every
//! [`AutoReader::probe_every`] looks whether the tree is back. Probes happen only inside a
//! read, and the actor reads only when its idle check saw a change, so an idle phone costs
//! neither screenshots nor dumps. Each switch is said once, with why
//! ([`ScreenReader::changed`]).

use std::time::{Duration, Instant};

use super::{ReadError, ReaderChange, ScreenReader, UiTreeReader, VisionReader};
use crate::screen::ScreenReading;
use crate::transport::Transport;

/// How often, while reading screenshots, one dump looks whether the tree is back.
pub const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(30);

/// Reads the tree when WeChat shows it and screenshots when it hides it.
pub struct AutoReader {
    device: String,
    tree: UiTreeReader,
    vision: Vision,
    /// Whether the vision reader keeps its frames (a live view watches), for when it is built.
    keep_frames: bool,
    using: Using,
    probe_every: Duration,
    change: Option<ReaderChange>,
    /// `auto:` and the reader in use, for [`ScreenReader::name`].
    name: String,
}

/// Builds the vision reader: `Err` says why there is none (no OCR engine on this machine).
pub type VisionFactory = Box<dyn FnOnce() -> Result<VisionReader, String> + Send>;

/// The vision reader, built when WeChat first hides its tree. Its OCR engine holds about
/// 100 MB (tesseract with its Chinese model), which a phone whose tree stays visible never
/// needs; the price is one load (about a second) at the first switch.
enum Vision {
    Later(VisionFactory),
    /// `Err`: a hidden tree is the tree reader's error, with this reason in the log.
    Built(Result<VisionReader, String>),
}

#[derive(Debug, Clone, Copy)]
enum Using {
    Tree,
    Vision { probed: Instant },
}

impl AutoReader {
    /// With a vision reader built already (its engine warm).
    pub fn new(
        device: impl Into<String>,
        tree: UiTreeReader,
        vision: Result<VisionReader, String>,
    ) -> Self {
        AutoReader::with_vision(device.into(), tree, Vision::Built(vision))
    }

    /// With a vision reader that `build` makes the first time the tree is hidden.
    pub fn lazy(device: impl Into<String>, tree: UiTreeReader, build: VisionFactory) -> Self {
        AutoReader::with_vision(device.into(), tree, Vision::Later(build))
    }

    fn with_vision(device: String, tree: UiTreeReader, vision: Vision) -> Self {
        let name = format!("auto:{}", tree.name());
        AutoReader {
            device,
            tree,
            vision,
            keep_frames: false,
            using: Using::Tree,
            probe_every: DEFAULT_PROBE_EVERY,
            change: None,
            name,
        }
    }

    /// How often a dump looks for the tree while screenshots are read.
    pub fn probe_every(mut self, every: Duration) -> Self {
        self.probe_every = every;
        self
    }

    /// Whether screenshots are being read now.
    pub fn on_vision(&self) -> bool {
        matches!(self.using, Using::Vision { .. })
    }

    /// The vision reader, built now if this is the first time it is needed.
    fn vision(&mut self) -> &mut Result<VisionReader, String> {
        if let Vision::Later(_) = self.vision {
            let Vision::Later(build) =
                std::mem::replace(&mut self.vision, Vision::Built(Err(String::new())))
            else {
                unreachable!("checked just above")
            };
            let started = Instant::now();
            let mut built = build();
            match &mut built {
                Ok(vision) => {
                    vision.keep_frames(self.keep_frames);
                    tracing::info!(device = %self.device, reader = %vision.name(), took_ms = started.elapsed().as_millis() as u64, "vision reader loaded");
                }
                Err(why) => {
                    tracing::warn!(device = %self.device, %why, "no vision reader: while WeChat hides its tree, this phone cannot be read")
                }
            }
            self.vision = Vision::Built(built);
        }
        match &mut self.vision {
            Vision::Built(vision) => vision,
            Vision::Later(_) => unreachable!("built above"),
        }
    }

    fn switch_to_vision(&mut self, version: &str) {
        let Ok(vision) = self.vision() else {
            return;
        };
        let vision_name = vision.name().to_string();
        let reason = format!(
            "WeChat {version} hides its screen from uiautomator (no trusted accessibility service is on); reading screenshots instead, and looking for the tree again every {} s",
            self.probe_every.as_secs()
        );
        tracing::warn!(device = %self.device, reader = %vision_name, %reason, "reading the screen from screenshots");
        self.name = format!("auto:{vision_name}");
        self.change = Some(ReaderChange {
            reader: vision_name.clone(),
            reason,
        });
        self.using = Using::Vision {
            probed: Instant::now(),
        };
    }

    fn switch_to_tree(&mut self) {
        let reason = "WeChat shows its screen to uiautomator again; reading the tree".to_string();
        tracing::warn!(device = %self.device, reader = %self.tree.name(), %reason, "reading the screen from the tree");
        self.name = format!("auto:{}", self.tree.name());
        self.change = Some(ReaderChange {
            reader: self.tree.name().to_string(),
            reason,
        });
        self.using = Using::Tree;
    }
}

impl ScreenReader for AutoReader {
    fn read(&mut self, phone: &mut dyn Transport) -> Result<ScreenReading, ReadError> {
        if let Using::Vision { probed } = self.using
            && probed.elapsed() >= self.probe_every
        {
            match self.tree.read(phone) {
                Ok(reading) => {
                    self.switch_to_tree();
                    return Ok(reading);
                }
                Err(ReadError::HiddenTree { .. }) => {}
                // The phone is gone: the vision read would fail the same way.
                Err(e @ ReadError::Transport(_)) => return Err(e),
                // A dump that would not settle says nothing about the tree: ask later.
                Err(e) => {
                    tracing::debug!(device = %self.device, error = %e, "probing the tree failed")
                }
            }
            self.using = Using::Vision {
                probed: Instant::now(),
            };
        }
        if let Using::Tree = self.using {
            match self.tree.read(phone) {
                Err(ReadError::HiddenTree { version }) => {
                    match self.vision().as_ref().map(drop).map_err(String::clone) {
                        Ok(()) => self.switch_to_vision(&version),
                        Err(why) => {
                            tracing::warn!(device = %self.device, %why, "WeChat hides its tree and no vision reader can take over");
                            return Err(ReadError::HiddenTree { version });
                        }
                    }
                }
                other => return other,
            }
        }
        match &mut self.vision {
            Vision::Built(Ok(vision)) => vision.read(phone),
            // Unreachable: the switch above needs a vision reader.
            _ => self.tree.read(phone),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn changed(&mut self) -> Option<ReaderChange> {
        self.change.take()
    }

    fn keep_frames(&mut self, keep: bool) {
        self.keep_frames = keep;
        if let Vision::Built(Ok(vision)) = &mut self.vision {
            vision.keep_frames(keep);
        }
    }

    /// The vision reader's frame, while it is the one reading (a tree read takes none).
    fn take_frame(&mut self) -> Option<super::Frame> {
        match (&self.using, &mut self.vision) {
            (Using::Vision { .. }, Vision::Built(Ok(vision))) => vision.take_frame(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use image::GrayImage;

    use super::*;
    use crate::ocr::{OcrEngine, OcrError, Recognised, TextLayout};
    use crate::reader::vision::Capture;
    use crate::screen::ScreenKind;
    use crate::transport::{ShellOutput, TransportError};
    use crate::uimap::UiMaps;

    const HIDDEN: &str = r#"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0"><node bounds="[0,0][0,0]" package="com.tencent.mm"/></hierarchy>UI hierchary dumped to: /dev/tty"#;

    /// A phone whose tree is hidden or shown as the test says; a screenshot is a blank
    /// screen (read as `Other`: no chat, no list), a dump the real 8.0 list.
    struct Phone {
        hidden: bool,
        gone: bool,
        commands: Vec<String>,
    }

    impl Phone {
        fn new(hidden: bool) -> Self {
            Phone {
                hidden,
                gone: false,
                commands: Vec::new(),
            }
        }
        fn count(&self, prefix: &str) -> usize {
            self.commands
                .iter()
                .filter(|c| c.starts_with(prefix))
                .count()
        }
        fn forget(&mut self) {
            self.commands.clear();
        }
    }

    impl Transport for Phone {
        fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
            self.commands.push(command.to_string());
            if self.gone {
                return Err(TransportError::DeviceOffline {
                    serial: "phone-1".into(),
                });
            }
            let stdout = if command.starts_with("uiautomator") {
                if self.hidden {
                    HIDDEN.as_bytes().to_vec()
                } else {
                    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
                    let xml = std::fs::read_to_string(
                        root.join("fixtures/real-dumps/list-8.0.x-2026-01-groups.xml"),
                    )
                    .expect("fixture");
                    format!("{xml}UI hierchary dumped to: /dev/tty\n").into_bytes()
                }
            } else if command == "screencap" {
                let (w, h) = (72u32, 160u32);
                let mut raw = Vec::new();
                for v in [w, h, 1] {
                    raw.extend_from_slice(&v.to_le_bytes());
                }
                raw.extend(std::iter::repeat_n(0xED, (w * h * 4) as usize));
                raw
            } else {
                Vec::new()
            };
            Ok(ShellOutput {
                stdout,
                stderr: Vec::new(),
                exit_code: Some(0),
            })
        }
        fn describe(&self) -> String {
            "scripted phone".into()
        }
    }

    /// An engine that is never needed on a blank screen.
    struct NoText;

    impl OcrEngine for NoText {
        fn name(&self) -> &str {
            "none"
        }
        fn line_px(&self) -> u32 {
            32
        }
        fn recognise(&mut self, _: &GrayImage, _: TextLayout) -> Result<Recognised, OcrError> {
            Ok(Recognised {
                text: String::new(),
                confidence: 1.0,
            })
        }
    }

    fn tree() -> UiTreeReader {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let maps = UiMaps::load_dir(&root.join("ui-maps")).expect("maps");
        let map = maps.by_name("wechat-8.0").expect("8.0 map").clone();
        UiTreeReader::new("phone-1", map, "8.0.78")
    }

    fn auto() -> AutoReader {
        let vision = VisionReader::new("phone-1", Box::new(NoText), Capture::Raw);
        AutoReader::new("phone-1", tree(), Ok(vision))
    }

    #[test]
    fn the_vision_reader_is_built_only_when_the_tree_first_hides() {
        let built = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = built.clone();
        let mut reader = AutoReader::lazy(
            "phone-1",
            tree(),
            Box::new(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(VisionReader::new("phone-1", Box::new(NoText), Capture::Raw))
            }),
        );
        reader.keep_frames(true);
        let mut phone = Phone::new(false);
        reader.read(&mut phone).expect("read");
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 0);
        phone.hidden = true;
        for _ in 0..3 {
            reader.read(&mut phone).expect("read");
        }
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(reader.on_vision());
        // The live view asked for frames before the reader existed: it gets them.
        assert!(reader.take_frame().is_some());
    }

    #[test]
    fn a_visible_tree_is_read_without_screenshots_or_notices() {
        let mut reader = auto();
        let mut phone = Phone::new(false);
        for _ in 0..3 {
            let reading = reader.read(&mut phone).expect("read");
            assert_eq!(reading.kind, ScreenKind::ConversationList);
        }
        assert_eq!(phone.count("uiautomator"), 3);
        assert_eq!(phone.count("screencap"), 0);
        assert_eq!(reader.changed(), None);
        assert_eq!(reader.name(), "auto:wechat-8.0");
    }

    #[test]
    fn a_hidden_tree_switches_to_screenshots_once_and_says_why_once() {
        let mut reader = auto();
        let mut phone = Phone::new(true);
        let reading = reader.read(&mut phone).expect("read from a screenshot");
        assert_eq!(reading.map, "vision:none");
        assert_eq!(phone.commands, ["uiautomator dump /dev/tty", "screencap"]);
        let change = reader.changed().expect("the switch is said");
        assert_eq!(change.reader, "vision:none");
        assert!(change.reason.contains("8.0.78 hides"), "{}", change.reason);
        assert_eq!(reader.changed(), None, "said once");
        assert_eq!(reader.name(), "auto:vision:none");
        // Until the probe is due, screenshots only: no dump per read.
        phone.forget();
        for _ in 0..3 {
            reader.read(&mut phone).expect("read");
        }
        assert_eq!(phone.commands, ["screencap"; 3]);
        assert_eq!(reader.changed(), None);
    }

    #[test]
    fn while_on_screenshots_a_due_probe_finds_the_tree_back_and_says_so() {
        let mut reader = auto().probe_every(Duration::ZERO);
        let mut phone = Phone::new(true);
        reader.read(&mut phone).expect("read");
        assert!(reader.on_vision());
        reader.changed();
        // Still hidden: one dump, then the screenshot; nothing to say.
        phone.forget();
        reader.read(&mut phone).expect("read");
        assert_eq!(phone.commands, ["uiautomator dump /dev/tty", "screencap"]);
        assert_eq!(reader.changed(), None);
        // The service is back: the probe's own dump is the reading.
        phone.hidden = false;
        phone.forget();
        let reading = reader.read(&mut phone).expect("read");
        assert_eq!(reading.kind, ScreenKind::ConversationList);
        assert_eq!(phone.commands, ["uiautomator dump /dev/tty"]);
        let change = reader.changed().expect("the way back is said");
        assert_eq!(change.reader, "wechat-8.0");
        assert!(!reader.on_vision());
        assert_eq!(reader.name(), "auto:wechat-8.0");
    }

    #[test]
    fn a_probe_is_not_made_before_it_is_due() {
        let mut reader = auto().probe_every(Duration::from_secs(3600));
        let mut phone = Phone::new(true);
        reader.read(&mut phone).expect("read");
        phone.hidden = false;
        phone.forget();
        reader.read(&mut phone).expect("read");
        assert_eq!(phone.commands, ["screencap"], "no dump before the probe");
        assert!(reader.on_vision());
    }

    #[test]
    fn without_a_vision_reader_a_hidden_tree_is_the_tree_readers_error() {
        let mut reader = AutoReader::new("phone-1", tree(), Err("no tesseract".into()));
        let mut phone = Phone::new(true);
        match reader.read(&mut phone) {
            Err(ReadError::HiddenTree { version }) => assert_eq!(version, "8.0.78"),
            other => panic!("expected a hidden tree, got {other:?}"),
        }
        assert_eq!(phone.count("screencap"), 0);
        assert_eq!(reader.changed(), None);
    }

    #[test]
    fn a_phone_gone_during_a_probe_is_the_transport_error() {
        let mut reader = auto().probe_every(Duration::ZERO);
        let mut phone = Phone::new(true);
        reader.read(&mut phone).expect("read");
        phone.gone = true;
        phone.forget();
        match reader.read(&mut phone) {
            Err(ReadError::Transport(e)) => assert!(e.is_transient()),
            other => panic!("expected the transport's error, got {other:?}"),
        }
        assert_eq!(
            phone.commands.len(),
            1,
            "no screenshot after the phone went"
        );
        assert!(reader.on_vision());
    }
}
