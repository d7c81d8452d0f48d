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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// libtesseract with `chi_sim+eng`, or the languages `TAPWIRE_TESSERACT_LANGS` names.
    Tesseract,
    /// PP-OCR's recognition model through ONNX Runtime.
    Ppocr,
}

impl EngineKind {
    pub const ALL: [EngineKind; 2] = [EngineKind::Tesseract, EngineKind::Ppocr];

    /// The engines tried in turn where no phone's `ocr`, `--ocr` or `TAPWIRE_OCR` names one.
    /// PP-OCR first: on WeChat's screens it reads more characters right, and sooner, than
    /// tesseract (docs/benchmarks.md, "PP-OCR, the second engine"); tesseract is what a
    /// system package provides where scripts/setup has not put PP-OCR's files.
    pub const PREFERENCE: [EngineKind; 2] = [EngineKind::Ppocr, EngineKind::Tesseract];

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
    /// The engine `TAPWIRE_OCR` names, none when unset; an unknown name is an error naming
    /// the two there are.
    pub fn from_env() -> Result<Option<EngineKind>, OcrError> {
        match std::env::var(ENGINE_ENV) {
            Ok(name) => name
                .parse()
                .map(Some)
                .map_err(|reason| OcrError::Unavailable {
                    engine: name.clone(),
                    reason,
                }),
            Err(_) => Ok(None),
        }
    }
}

/// `kind`, else the engine `TAPWIRE_OCR` names, else the first of
/// [`EngineKind::PREFERENCE`] that loads, loaded and warm: what a phone's `ocr` and
/// `tapwire read --ocr` choose. An engine named and missing is an error, never replaced by
/// another: a user who chose one gets that one or is told why not.
pub fn engine(kind: Option<EngineKind>) -> Result<Box<dyn OcrEngine>, OcrError> {
    match kind.map_or_else(EngineKind::from_env, |kind| Ok(Some(kind)))? {
        Some(kind) => kind.load(),
        None => preferred_engine(),
    }
}

/// The first engine of [`EngineKind::PREFERENCE`] that loads; why each before it did not is
/// logged, and why every one failed is the error.
fn preferred_engine() -> Result<Box<dyn OcrEngine>, OcrError> {
    let mut reasons = Vec::new();
    for kind in EngineKind::PREFERENCE {
        match kind.load() {
            Ok(engine) => {
                if !reasons.is_empty() {
                    tracing::info!(
                        engine = kind.name(),
                        skipped = %reasons.join("; "),
                        "reading screenshots with the next OCR engine installed"
                    );
                }
                return Ok(engine);
            }
            Err(error) => reasons.push(error.to_string()),
        }
    }
    Err(OcrError::Unavailable {
        engine: "ppocr or tesseract".into(),
        reason: reasons.join("; "),
    })
}

/// The engine `TAPWIRE_OCR` names, else the preferred one installed, loaded and warm.
pub fn default_engine() -> Result<Box<dyn OcrEngine>, OcrError> {
    engine(None)
}
