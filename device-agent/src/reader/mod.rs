//! Seeing the phone's screen: the phone actor asks a [`ScreenReader`] what is in front and
//! gets a [`ScreenReading`], without knowing how it was read.
//!
//! - [`uitree`]: `uiautomator dump`, parsed and recognised with the UI map of the phone's
//!   WeChat version. Exact texts and bounds, as long as WeChat shows its tree.
//! - [`vision`]: a screenshot (`screencap`, raw or PNG) segmented by colours and read with
//!   OCR, for WeChat builds that hide their tree (DESIGN.md §4).
//! - [`auto`]: the tree while WeChat shows it, screenshots while it hides it, switching
//!   both ways and saying so (`mode = "auto"`, the default).
//!
//! A new reader is one new file here; the actor is built with it by
//! `PhoneAgent::with_reader`.

pub mod auto;
pub mod uitree;
pub mod vision;

pub use auto::AutoReader;
pub use uitree::UiTreeReader;
pub use vision::VisionReader;

use crate::dump::DumpError;
use crate::ocr::OcrError;
use crate::screen::ScreenReading;
use crate::transport::{Transport, TransportError};

/// Reads what is on a phone's screen.
///
/// **The phone comes with each call; everything else with the constructor.** The actor owns
/// the phone's one ADB connection and taps and types through it between reads (DESIGN.md
/// §7: reads and injections are serialised through one actor), so a reader cannot own it:
/// it borrows the transport for one [`read`](ScreenReader::read) and runs whatever it needs
/// on it (a dump, a screenshot). What stays the same for as long as the phone is connected
/// is given once to the constructor, when the phone's WeChat version is known: the UI map
/// and the version for [`UiTreeReader`]; for a vision reader, its OCR models and the
/// colours of bubbles. A reader never touches the phone outside a call.
///
/// **What comes back is the same whatever the source.** A [`ScreenReading`] is all the
/// actor uses (rows, messages, the input box, the buttons to tap), so the work above it
/// (news, watermarks, replies) does not change with the reader. A reader that cannot see
/// something (a vision reader has no resource ids; it may not tell a dialog) leaves it out
/// of the reading, as a tree reader does for a role the map does not know.
///
/// **Retrying belongs to the reader**: only it knows which of its failures pass (uiautomator
/// while the screen animates; a screenshot cut short). An error means it has given up;
/// [`ReadError`] says how.
///
/// `&mut self`, because a reader may keep what it learnt between reads (a vision reader
/// the last frame, to skip OCR on an unchanged screen); `Send`, because the actor runs on
/// a thread of its own.
pub trait ScreenReader: Send {
    /// Looks at the screen once (retrying what passes) and says what is in front.
    fn read(&mut self, phone: &mut dyn Transport) -> Result<ScreenReading, ReadError>;

    /// What the screen is read with, for status and logs: the UI map's name
    /// (`wechat-8.0`) for the tree reader.
    fn name(&self) -> &str;

    /// A change in how the screen is read since the last call, said once: a reader that
    /// switches between sources ([`AutoReader`]) reports here, and the actor tells the
    /// user. Readers that never switch keep the default.
    fn changed(&mut self) -> Option<ReaderChange> {
        None
    }

    /// Keep the screenshot each read takes, for [`take_frame`](ScreenReader::take_frame):
    /// asked before each read with whether a live view watches. Off by default, since a
    /// frame is megabytes; a reader that takes no screenshots ignores it.
    fn keep_frames(&mut self, _keep: bool) {}

    /// The screenshot the last read was made from, if this reader took one and was asked
    /// to keep it: a live view shows it instead of taking another.
    fn take_frame(&mut self) -> Option<Frame> {
        None
    }
}

/// A screenshot as `screencap` printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `screencap -p`.
    Png(Vec<u8>),
    /// Plain `screencap`: a little-endian header (width, height, pixel format, from
    /// Android 9 a colour space), then RGBA rows.
    Raw(Vec<u8>),
}

impl Frame {
    /// Width and height, read from the header alone.
    pub fn size(&self) -> Option<(u32, u32)> {
        match self {
            // The header alone is read, not the pixels.
            Frame::Png(png) => {
                image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png)
                    .into_dimensions()
                    .ok()
            }
            Frame::Raw(raw) => {
                let word = |i: usize| {
                    raw.get(i * 4..i * 4 + 4)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(u32::from_le_bytes)
                };
                Some((word(0)?, word(1)?))
            }
        }
    }

    /// The frame as PNG: as it is, or encoded from the raw pixels (tens of milliseconds
    /// for a phone's screen: done where a PNG is asked for, never on the actor's thread).
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        match self {
            Frame::Png(png) => Ok(png.clone()),
            Frame::Raw(raw) => {
                let image = vision::decode_screenshot(raw).map_err(|e| e.to_string())?;
                let mut png = Vec::new();
                image::ImageEncoder::write_image(
                    image::codecs::png::PngEncoder::new_with_quality(
                        &mut png,
                        image::codecs::png::CompressionType::Fast,
                        image::codecs::png::FilterType::Adaptive,
                    ),
                    image.as_raw(),
                    image.width(),
                    image.height(),
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(|e| e.to_string())?;
                Ok(png)
            }
        }
    }
}

/// The reader in use changed, and why (for a status line the user sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderChange {
    /// What the screen is read with from now on ([`ScreenReader::name`] of that reader).
    pub reader: String,
    pub reason: String,
}

/// Why a reader could not say what is on screen, by what the caller can do about it.
///
/// A reader with a failure of a new kind adds a variant here; the compiler then points at
/// the one place that decides what the actor does with it (`From<ReadError> for
/// AgentError`).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The phone did not answer. The transport's own error, so that the caller can tell a
    /// phone that may come back (an unplugged cable: retry later,
    /// [`TransportError::is_transient`]) from one that needs the user (no adb server).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// uiautomator failed on every attempt: the screen would not settle, or the phone
    /// printed no dump at all. Reading again at once is what was just tried.
    #[error("the screen could not be dumped after {attempts} attempts: {last}")]
    Dump { attempts: u32, last: DumpError },
    /// WeChat hides its tree from uiautomator on this phone (8.0.55+ without an
    /// accessibility service): no retry helps this reader; an accessibility service that
    /// brings the tree back, or a reader that uses screenshots, does.
    #[error("WeChat {version} hides its screen from uiautomator (the dump is one empty node)")]
    HiddenTree { version: String },
    /// No screenshot could be decoded on any attempt (cut short, or not an image).
    #[error("no readable screenshot after {attempts} attempts: {last}")]
    Screenshot { attempts: u32, last: String },
    /// The OCR engine failed: reading again will fail again.
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

#[cfg(test)]
mod tests {
    use super::Frame;

    #[test]
    fn a_frames_size_comes_from_its_header_and_what_is_not_an_image_has_none() {
        let mut png = Vec::new();
        image::RgbImage::new(7, 5)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        assert_eq!(Frame::Png(png.clone()).size(), Some((7, 5)));
        assert_eq!(Frame::Png(png[..20].to_vec()).size(), None);
        assert_eq!(
            Frame::Png(b"not a png at all, really".to_vec()).size(),
            None
        );
        let mut raw = Vec::new();
        for word in [1080u32, 2400, 1] {
            raw.extend_from_slice(&word.to_le_bytes());
        }
        assert_eq!(Frame::Raw(raw).size(), Some((1080, 2400)));
    }
}
