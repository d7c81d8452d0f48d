//! Tesseract through the system's libtesseract (its C API, opened at run time by
//! [`capi`]), loaded once with `chi_sim+eng` and reused for every crop.
//!
//! Facts this follows (tesseract's own documentation, `tesseract-ocr/tessdoc`
//! `ImproveQuality.md` and `tess4/...`): the LSTM models read best when a capital letter is
//! 20–40 px high, on dark text over a light background with a margin of white around it;
//! the page segmentation mode should say what the crop holds (7 or 13: one line, 6: one
//! block, 8: one word) instead of letting it analyse a page; a resolution hint stops the "invalid
//! resolution" guess. Pixels go in raw (`SetImage` with one byte per pixel), so no crop is
//! encoded as a PNG on the way.

mod capi;

use std::ffi::c_int;
use std::path::PathBuf;

use image::GrayImage;

use super::{OcrEngine, OcrError, Recognised, TextLayout};
use capi::{BaseApi, CapiError};

pub use capi::{LIBRARY_ENV, version as library_version};

/// WeChat's UI is Chinese with English and digits mixed in.
pub const DEFAULT_LANGUAGES: &str = "chi_sim+eng";
/// Replaces [`DEFAULT_LANGUAGES`] (`chi_sim`, say, or `chi_tra+eng` for traditional script).
pub const LANGUAGES_ENV: &str = "TAPWIRE_TESSERACT_LANGS";

const NAME: &str = "tesseract";

/// One loaded tesseract. Not shared between threads: each worker creates its own.
///
/// With several languages (`chi_sim+eng`) a second instance holds the first language alone:
/// tesseract tries each word in every language and, on a short line, now and then prefers
/// an English guess for Chinese glyphs (`陈静怡` read as `Baste`). A line read with low
/// confidence (its least sure word) is read again by the first language alone, and that
/// reading kept when it found more glyphs of its own script.
pub struct TesseractEngine {
    api: Api,
    first_only: Option<Api>,
    languages: String,
}

struct Api {
    api: BaseApi,
    /// The page segmentation mode set last, so it is set again only when it changes.
    psm: Option<c_int>,
    /// Whether only digits are read now (badges).
    digits: bool,
}

/// Below this confidence (of a line's least sure word) a line is read again by the first
/// language alone.
const SURE: f32 = 0.80;

impl TesseractEngine {
    /// Loads `languages` (`chi_sim+eng`) from the data directory tesseract was built with, or
    /// `TESSDATA_PREFIX` when set. Takes a few hundred milliseconds: do it once.
    pub fn new(languages: &str) -> Result<Self, OcrError> {
        let unavailable = |reason: String| OcrError::Unavailable {
            engine: NAME.into(),
            reason,
        };
        let load = |list: &str| {
            let list = capi::language_list(list)
                .ok_or_else(|| unavailable(format!("bad language list {languages:?}")))?;
            match BaseApi::new(&list) {
                Ok(api) => Ok(Api {
                    api,
                    psm: None,
                    digits: false,
                }),
                Err(CapiError::Unavailable(reason)) => Err(unavailable(reason)),
                Err(_) => Err(unavailable(missing_data_hint(languages))),
            }
        };
        let api = load(languages)?;
        let first_only = match languages.split_once('+') {
            Some((first, _)) => Some(load(first)?),
            None => None,
        };
        Ok(TesseractEngine {
            api,
            first_only,
            languages: languages.to_string(),
        })
    }

    pub fn languages(&self) -> &str {
        &self.languages
    }

    fn failed(reason: &str) -> OcrError {
        OcrError::Failed {
            engine: NAME.into(),
            reason: reason.into(),
        }
    }
}

impl OcrEngine for TesseractEngine {
    fn name(&self) -> &str {
        NAME
    }

    fn line_px(&self) -> u32 {
        // Measured on the vision corpus (docs/benchmarks.md): 28 px CJK glyphs read best
        // (99.3 % against 99.2 % at 32 px and 24 px); the time hardly changes, as tesseract
        // scales every line to its network's own height.
        28
    }

    fn recognise(&mut self, crop: &GrayImage, layout: TextLayout) -> Result<Recognised, OcrError> {
        if super::too_small(crop) {
            return Ok(Recognised::nothing());
        }
        let first = self.api.read(crop, layout)?;
        match &mut self.first_only {
            // Only a line with Latin letters in it can be Chinese misread as English.
            Some(alone)
                if first.confidence < SURE
                    && first.text.chars().any(|c| c.is_ascii_alphabetic()) =>
            {
                // Confidences of two models do not compare well; what does is that the first
                // language alone (Chinese, which knows Latin letters too) saw glyphs of its
                // own script where the mix saw Latin ones.
                let second = alone.read(crop, layout)?;
                Ok(if own_script(&second.text) > own_script(&first.text) {
                    second
                } else {
                    first
                })
            }
            _ => Ok(first),
        }
    }
}

impl Api {
    fn read(&mut self, crop: &GrayImage, layout: TextLayout) -> Result<Recognised, OcrError> {
        match layout {
            TextLayout::Block => return self.read_in(crop, capi::PSM_SINGLE_BLOCK, false),
            TextLayout::Line => {
                // One line (mode 7) reads grey UI text under JPEG noise best (`11月7日`, not
                // `11878`; `昨天`, not `PER`: fixtures/real-screens, 91 -> 95 % on a list),
                // but now and then throws a short line away as noise or adds a glyph to a
                // well-known phrase (`加入了和群聊`). Raw line (mode 13) has neither habit:
                // a line mode 7 read as nothing or unsure of is read again raw, and the surer
                // reading kept (the same model's confidences, so they compare).
                let line = self.read_in(crop, capi::PSM_SINGLE_LINE, false)?;
                if line.text.chars().any(char::is_alphanumeric) && line.confidence >= LINE_SURE {
                    return Ok(line);
                }
                let raw = self.read_in(crop, capi::PSM_RAW_LINE, false)?;
                let empty = !line.text.chars().any(char::is_alphanumeric);
                return Ok(if empty || raw.confidence > line.confidence {
                    raw
                } else {
                    line
                });
            }
            TextLayout::Word => {}
        }
        // A badge's count. A lone digit is read as nothing by one mode and fine by another,
        // which one depending on the digit and its size (a 7 at 1080 px wide, a 4 at 1440),
        // and a count read as nothing is taken for a dot: the chat's first read then takes
        // one message as news and loses the rest. So: digits only, on a margin of paper,
        // and the next mode while none was found (badge_counts_are_read_exactly).
        let padded = with_margin(crop, BADGE_MARGIN_PX);
        let mut read = Recognised {
            text: String::new(),
            confidence: 0.0,
        };
        for mode in [
            capi::PSM_SINGLE_WORD,
            capi::PSM_SINGLE_LINE,
            capi::PSM_SINGLE_CHAR,
        ] {
            read = self.read_in(&padded, mode, true)?;
            if read.text.chars().any(|c| c.is_ascii_digit()) {
                break;
            }
        }
        Ok(read)
    }

    fn read_in(
        &mut self,
        crop: &GrayImage,
        mode: c_int,
        digits: bool,
    ) -> Result<Recognised, OcrError> {
        let failed = |error: CapiError| TesseractEngine::failed(&error.to_string());
        if self.psm != Some(mode) {
            self.api.set_page_seg_mode(mode);
            self.psm = Some(mode);
        }
        if self.digits != digits {
            // WeChat writes `99+` past 99.
            let whitelist = if digits { c"0123456789+" } else { c"" };
            self.api
                .set_variable(c"tessedit_char_whitelist", whitelist)
                .map_err(failed)?;
            self.digits = digits;
        }
        self.api
            .set_grey_image(crop.as_raw(), crop.width(), crop.height())
            .map_err(failed)?;
        self.api.set_source_resolution(300);
        self.api.recognize().map_err(failed)?;
        let text = self
            .api
            .utf8_text()
            .ok_or_else(|| TesseractEngine::failed("no text came back"))?;
        let text = text.trim_end().to_string();
        // The least sure word: one misread word in a line of good ones is what matters.
        let confidence = self
            .api
            .word_confidences()
            .into_iter()
            .min()
            .unwrap_or_else(|| self.api.mean_text_conf())
            .clamp(0, 100) as f32
            / 100.0;
        Ok(Recognised { text, confidence })
    }
}

/// Below this confidence (of its least sure word) a line read in mode 7 is read again in
/// mode 13. Measured on the corpus and fixtures/real-screens: 0.4 lost centre lines, 0.8
/// cost time for no gain.
const LINE_SURE: f32 = 0.6;

/// White paper around a badge's digits, in pixels of the prepared crop.
const BADGE_MARGIN_PX: u32 = 12;

/// `crop` in the middle of white paper `margin` pixels wide (crops are dark text on white).
fn with_margin(crop: &GrayImage, margin: u32) -> GrayImage {
    let mut paper = GrayImage::from_pixel(
        crop.width() + 2 * margin,
        crop.height() + 2 * margin,
        image::Luma([255]),
    );
    image::imageops::replace(&mut paper, crop, i64::from(margin), i64::from(margin));
    paper
}

/// Letters outside ASCII: CJK glyphs, for `chi_sim`.
fn own_script(text: &str) -> usize {
    text.chars()
        .filter(|c| c.is_alphabetic() && !c.is_ascii())
        .count()
}

/// Where tesseract looks for `*.traineddata` and which of the asked languages are missing.
fn missing_data_hint(languages: &str) -> String {
    let dirs: Vec<PathBuf> = std::env::var_os("TESSDATA_PREFIX")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/share/tesseract-ocr/5/tessdata",
                "/usr/share/tesseract-ocr/4.00/tessdata",
                "/usr/share/tessdata",
                "/usr/local/share/tessdata",
                "/opt/homebrew/share/tessdata",
            ]
            .map(PathBuf::from),
        )
        .collect();
    let missing: Vec<&str> = languages
        .split('+')
        .filter(|lang| {
            !dirs
                .iter()
                .any(|d| d.join(format!("{lang}.traineddata")).is_file())
        })
        .collect();
    if missing.is_empty() {
        format!("libtesseract could not load {languages} (check TESSDATA_PREFIX)")
    } else {
        format!(
            "no language data for {} (run scripts/setup: Debian `tesseract-ocr-chi-sim \
             tesseract-ocr-eng`, macOS `brew install tesseract-lang`; or point TESSDATA_PREFIX \
             at a directory holding {}.traineddata)",
            missing.join(", "),
            missing.join(".traineddata, ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_language_data_is_named() {
        match TesseractEngine::new("xx_nonexistent") {
            Err(OcrError::Unavailable { reason, .. }) => {
                assert!(reason.contains("xx_nonexistent"), "{reason}");
                assert!(reason.contains("scripts/setup"), "{reason}");
            }
            Err(other) => panic!("expected unavailable, got {other}"),
            Ok(_) => panic!("a language that does not exist loaded"),
        }
    }

    #[test]
    fn a_blank_crop_reads_as_nothing() {
        let mut engine =
            TesseractEngine::new(DEFAULT_LANGUAGES).expect("scripts/setup installs it");
        let blank = GrayImage::from_pixel(200, 50, image::Luma([255]));
        let read = engine.recognise(&blank, TextLayout::Line).expect("read");
        assert_eq!(read.text, "");
    }
}
