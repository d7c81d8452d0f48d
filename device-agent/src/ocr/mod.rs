//! Reading text out of pictures: the engines the vision reader
//! ([`crate::reader::vision`]) hands its crops to.
//!
//! An engine is created once (loading a model takes a good part of a second) and reused for
//! every crop of every screen; one instance belongs to one thread (`Send`, not `Sync`), so a
//! worker that reads several phones' screens keeps one engine per thread.
//!
//! - [`tesseract`]: the system's libtesseract with `chi_sim+eng`, the field's standard
//!   (DESIGN.md §4), opened when the first engine is made.
//!
//! A second engine (PP-OCR models through an ONNX runtime, DESIGN.md §4) would be one more
//! file here implementing [`OcrEngine`].

pub mod tesseract;

use image::GrayImage;

/// How the text in a crop is laid out, which tells the engine how to segment it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextLayout {
    /// One line: a name, a time, a title, a row's preview.
    Line,
    /// One or more lines of one paragraph: a message bubble.
    Block,
    /// A few digits or one short word: a badge's count.
    Word,
}

/// What an engine read in a crop.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised {
    /// The text, lines joined with `\n`, without the engine's trailing newline.
    pub text: String,
    /// The engine's confidence in its least sure word, 0–1.
    pub confidence: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// The engine cannot run on this machine: its library or language data is missing, or
    /// Tapwire was built without it. The message says what to install.
    #[error("OCR engine {engine} is unavailable: {reason}")]
    Unavailable { engine: String, reason: String },
    /// The engine failed on one crop.
    #[error("OCR engine {engine} failed: {reason}")]
    Failed { engine: String, reason: String },
}

/// A text recogniser for crops of a screenshot.
///
/// Crops come as dark text on a light background, grey, tightly cut around the text with a
/// small margin, scaled so that a line of CJK text is about [`OcrEngine::line_px`] high: the
/// vision reader normalises colours and size so that every engine sees the same kind of
/// picture whatever the phone's theme and resolution.
pub trait OcrEngine: Send {
    /// The engine's name for logs and readings (`tesseract`).
    fn name(&self) -> &str;

    /// The height of a CJK glyph, in pixels, the engine reads best at.
    fn line_px(&self) -> u32;

    /// Reads the text in `crop`, laid out as `layout`.
    fn recognise(&mut self, crop: &GrayImage, layout: TextLayout) -> Result<Recognised, OcrError>;
}

/// The default engine, loaded and warm: tesseract with `chi_sim+eng`, or the languages
/// `TAPWIRE_TESSERACT_LANGS` names.
pub fn default_engine() -> Result<Box<dyn OcrEngine>, OcrError> {
    let languages = std::env::var(tesseract::LANGUAGES_ENV)
        .unwrap_or_else(|_| tesseract::DEFAULT_LANGUAGES.to_string());
    Ok(Box::new(tesseract::TesseractEngine::new(&languages)?))
}
