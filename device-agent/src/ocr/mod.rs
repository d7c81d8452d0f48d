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
//! - [`ppocr`]: PP-OCR's recognition model through ONNX Runtime (DESIGN.md §4), both taken
//!   from PyPI's wheels by `scripts/setup` and opened when the first engine is made.

pub mod ppocr;
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

impl Recognised {
    /// What a crop too small to hold a glyph reads as, without asking an engine.
    pub fn nothing() -> Recognised {
        Recognised {
            text: String::new(),
            confidence: 0.0,
        }
    }
}

/// Smaller than any glyph an engine could read (a sliver left by segmentation).
pub(crate) fn too_small(crop: &GrayImage) -> bool {
    crop.width() < 4 || crop.height() < 4
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

/// Which engine reads a phone's screenshots (`ocr` of `[[phones]]`, `--ocr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// libtesseract with `chi_sim+eng`, or the languages `TAPWIRE_TESSERACT_LANGS` names.
    #[default]
    Tesseract,
    /// PP-OCR's recognition model through ONNX Runtime.
    Ppocr,
}

impl EngineKind {
    pub const ALL: [EngineKind; 2] = [EngineKind::Tesseract, EngineKind::Ppocr];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Tesseract => "tesseract",
            EngineKind::Ppocr => "ppocr",
        }
    }

    /// The engine, loaded and warm.
    pub fn load(self) -> Result<Box<dyn OcrEngine>, OcrError> {
        Ok(match self {
            EngineKind::Tesseract => {
                let languages = std::env::var(tesseract::LANGUAGES_ENV)
                    .unwrap_or_else(|_| tesseract::DEFAULT_LANGUAGES.to_string());
                Box::new(tesseract::TesseractEngine::new(&languages)?)
            }
            EngineKind::Ppocr => Box::new(ppocr::PpOcrEngine::new()?),
        })
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        EngineKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| format!("unknown OCR engine {name:?} (tesseract or ppocr)"))
    }
}

/// Chooses the engine where no configuration says: `TAPWIRE_OCR`.
pub const ENGINE_ENV: &str = "TAPWIRE_OCR";

impl EngineKind {
    /// The engine `TAPWIRE_OCR` names, tesseract when unset; an unknown name is an error
    /// naming the two there are.
    pub fn from_env() -> Result<EngineKind, OcrError> {
        match std::env::var(ENGINE_ENV) {
            Ok(name) => name.parse().map_err(|reason| OcrError::Unavailable {
                engine: name.clone(),
                reason,
            }),
            Err(_) => Ok(EngineKind::default()),
        }
    }
}

/// `kind`, else the engine `TAPWIRE_OCR` names, loaded and warm: what a phone's `ocr` and
/// `tapwire read --ocr` choose, falling back to the environment.
pub fn engine(kind: Option<EngineKind>) -> Result<Box<dyn OcrEngine>, OcrError> {
    kind.map_or_else(EngineKind::from_env, Ok)?.load()
}

/// The engine `TAPWIRE_OCR` names (tesseract when unset), loaded and warm.
pub fn default_engine() -> Result<Box<dyn OcrEngine>, OcrError> {
    engine(None)
}
