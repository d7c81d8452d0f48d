//! PP-OCR's text recognition model (`ch_PP-OCRv4_rec_infer.onnx`, the one PyPI's
//! `rapidocr-onnxruntime` 1.4.4 ships) run through ONNX Runtime, opened at run time.
//!
//! Only the recogniser is used: the vision reader finds and cuts the lines itself, which is
//! what PP-OCR's detection model would do. Facts this follows, from PaddleOCR's
//! `ppocr/postprocess/rec_postprocess.py` (`CTCLabelDecode`) and RapidOCR's
//! `ch_ppocr_rec/text_recognize.py`, which run this model:
//! - input `[batch, 3, 48, width]`, RGB scaled to `(v / 255 - 0.5) / 0.5`, a line resized to
//!   48 px high with its aspect kept;
//! - output `[batch, width / 8, classes]`, each step a probability per class; class 0 is CTC's
//!   blank, then the characters the model's metadata lists under `character` (one per
//!   line), then a space;
//! - decoding: the most likely class per step, repeats merged, blanks dropped.
//!
//! Where the files are: [`DIR_ENV`], else Tapwire's data directory
//! (`$XDG_DATA_HOME/tapwire/ppocr`, by default `~/.local/share/tapwire/ppocr`), where
//! `scripts/setup` puts the model and `libonnxruntime` taken out of PyPI's wheels. ONNX
//! Runtime's own `ORT_DYLIB_PATH` names another runtime library.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::GrayImage;
use image::imageops::{self, FilterType};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::{OcrEngine, OcrError, Recognised, TextLayout};

/// A directory holding the model and the runtime library.
pub const DIR_ENV: &str = "TAPWIRE_PPOCR_DIR";
/// ONNX Runtime's library, when it is not in the model's directory (ort's own variable).
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// The recognition model's file name, as PyPI's `rapidocr-onnxruntime` 1.4.4 ships it.
pub const MODEL_FILE: &str = "ch_PP-OCRv4_rec_infer.onnx";

const NAME: &str = "ppocr";
/// The model's input height.
const INPUT_HEIGHT: u32 = 48;
/// CTC's blank is class 0.
const BLANK: usize = 0;

/// One loaded recogniser. Not shared between threads: each worker creates its own (ONNX
/// Runtime's session runs on the calling thread: one intra-op thread, as one core is what
/// a screen is measured on).
pub struct PpOcrEngine {
    session: Session,
    /// Per class, its text: blank at 0 (empty), the model's characters, a space.
    classes: Vec<String>,
    /// Classes a badge may hold: blank, the digits and `+` (WeChat writes `99+`).
    badge_classes: Vec<usize>,
    /// The input, reused from crop to crop.
    input: Vec<f32>,
}

impl PpOcrEngine {
    /// Loads the model from [`DIR_ENV`] or the data directory. Takes a few hundred
    /// milliseconds: do it once per thread.
    pub fn new() -> Result<Self, OcrError> {
        let dir = model_dir().ok_or_else(|| unavailable(not_installed(&data_dirs())))?;
        Self::from_dir(&dir)
    }

    /// Loads the model from `dir` (the runtime from there too unless [`DYLIB_ENV`] is set).
    pub fn from_dir(dir: &Path) -> Result<Self, OcrError> {
        let model = dir.join(MODEL_FILE);
        if !model.is_file() {
            return Err(unavailable(not_installed(&[dir.to_path_buf()])));
        }
        let environment = environment(dir)?;
        let session = Session::builder(environment)
            .and_then(|b| Ok(b.with_intra_threads(1)?))
            .and_then(|b| Ok(b.with_inter_threads(1)?))
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|mut b| b.commit_from_file(&model))
            .map_err(|e| unavailable(format!("cannot load {}: {e}", model.display())))?;
        let characters = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("character"))
            .ok_or_else(|| {
                unavailable(format!(
                    "{} has no `character` list in its metadata: not a PP-OCR recognition \
                     model from rapidocr-onnxruntime",
                    model.display()
                ))
            })?;
        let classes: Vec<String> = std::iter::once(String::new())
            .chain(characters.lines().map(str::to_string))
            .chain(std::iter::once(" ".to_string()))
            .collect();
        let badge_classes = classes
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                *i == BLANK || (c.len() == 1 && c.chars().all(|c| c.is_ascii_digit() || c == '+'))
            })
            .map(|(i, _)| i)
            .collect();
        Ok(PpOcrEngine {
            session,
            classes,
            badge_classes,
            input: Vec::new(),
        })
    }

    /// The crop as the model's input: 48 px high, three equal channels, scaled to -1..1.
    fn fill_input(&mut self, crop: &GrayImage) -> u32 {
        let width = (u64::from(crop.width()) * u64::from(INPUT_HEIGHT))
            .div_ceil(u64::from(crop.height()))
            .max(1);
        let width = u32::try_from(width).unwrap_or(u32::MAX);
        let resized = imageops::resize(crop, width, INPUT_HEIGHT, FilterType::Triangle);
        let plane = resized.as_raw();
        self.input.clear();
        self.input.reserve(plane.len() * 3);
        for _ in 0..3 {
            self.input
                .extend(plane.iter().map(|&v| f32::from(v) / 127.5 - 1.0));
        }
        width
    }
}

impl OcrEngine for PpOcrEngine {
    fn name(&self) -> &str {
        NAME
    }

    fn line_px(&self) -> u32 {
        // The reader's crops carry a 10 px margin above and below the ink: 28 px glyphs make
        // a crop about the model's 48 px, so the resize hardly changes them.
        28
    }

    fn recognise(&mut self, crop: &GrayImage, layout: TextLayout) -> Result<Recognised, OcrError> {
        if super::too_small(crop) {
            return Ok(Recognised::nothing());
        }
        let width = self.fill_input(crop);
        let shape = [1_usize, 3, INPUT_HEIGHT as usize, width as usize];
        let input = TensorRef::from_array_view((shape, self.input.as_slice()))
            .map_err(|e| failed(&e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![input])
            .map_err(|e| failed(&e.to_string()))?;
        let (shape, probabilities) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| failed(&e.to_string()))?;
        let classes = self.classes.len();
        if shape.len() != 3 || usize::try_from(shape[2]).ok() != Some(classes) {
            return Err(failed(&format!(
                "the model answered {shape:?}, not [1, steps, {classes}]"
            )));
        }
        let allowed = match layout {
            TextLayout::Word => Some(self.badge_classes.as_slice()),
            // Blocks never come here (the reader cuts bubbles into lines), and a line is
            // what the model reads.
            TextLayout::Line | TextLayout::Block => None,
        };
        let decoded = decode(probabilities, classes, allowed);
        Ok(Recognised {
            text: decoded
                .classes
                .iter()
                .map(|&c| self.classes[c].as_str())
                .collect::<String>()
                .trim()
                .to_string(),
            confidence: decoded.least_sure,
        })
    }
}

/// What CTC's greedy decoding found: the classes read, in order, and the probability of the
/// least sure of them (1 when none).
#[derive(Debug, PartialEq)]
struct Decoded {
    classes: Vec<usize>,
    least_sure: f32,
}

/// Greedy CTC decoding of `steps × classes` probabilities: the likeliest class per step
/// (among `allowed` when given), a class repeated in consecutive steps read once, blanks
/// dropped (a blank between two equal classes keeps both: `11`).
fn decode(probabilities: &[f32], classes: usize, allowed: Option<&[usize]>) -> Decoded {
    let mut read = Vec::new();
    let mut least_sure = 1.0_f32;
    let mut previous = BLANK;
    for step in probabilities.chunks_exact(classes) {
        let best = match allowed {
            Some(allowed) => allowed
                .iter()
                .filter_map(|&c| step.get(c).map(|&p| (c, p)))
                .max_by(|a, b| a.1.total_cmp(&b.1)),
            None => step
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1)),
        };
        let Some((class, probability)) = best else {
            continue;
        };
        if class != BLANK && class != previous {
            read.push(class);
            least_sure = least_sure.min(probability);
        }
        previous = class;
    }
    Decoded {
        classes: read,
        least_sure,
    }
}

/// ONNX Runtime, opened once per process (ort allows one environment per process).
fn environment(dir: &Path) -> Result<&'static ort::environment::Environment, OcrError> {
    static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let library = std::env::var_os(DYLIB_ENV)
                .map(PathBuf::from)
                .or_else(|| runtime_library(dir))
                .ok_or_else(|| {
                    format!(
                        "no libonnxruntime in {} (run scripts/setup, or set {DYLIB_ENV} to the \
                         library inside PyPI's onnxruntime wheel)",
                        dir.display()
                    )
                })?;
            let environment = ort::init_from(&library)
                .map_err(|e| e.to_string())?
                .with_name("tapwire")
                .build()
                .map_err(|e| format!("{}: {e}", library.display()))?;
            tracing::info!(library = %library.display(), "ONNX Runtime loaded");
            Ok(environment)
        })
        .as_ref()
        .map_err(|reason| unavailable(reason.clone()))
}

/// `libonnxruntime.so.1.32.0` or `libonnxruntime.1.32.0.dylib` in `dir`.
fn runtime_library(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.") && !n.ends_with(".txt"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Where the model is looked for, in order.
fn data_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        return vec![PathBuf::from(dir)];
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")));
    data_home
        .map(|d| d.join("tapwire").join("ppocr"))
        .into_iter()
        .collect()
}

fn model_dir() -> Option<PathBuf> {
    data_dirs()
        .into_iter()
        .find(|dir| dir.join(MODEL_FILE).is_file())
}

fn not_installed(looked_in: &[PathBuf]) -> String {
    let looked: Vec<String> = looked_in.iter().map(|d| d.display().to_string()).collect();
    format!(
        "no {MODEL_FILE} in {} (run scripts/setup, which takes it and ONNX Runtime from PyPI's \
         rapidocr-onnxruntime and onnxruntime wheels; or set {DIR_ENV})",
        if looked.is_empty() {
            "any data directory (HOME is not set)".to_string()
        } else {
            looked.join(", ")
        }
    )
}

fn unavailable(reason: String) -> OcrError {
    OcrError::Unavailable {
        engine: NAME.into(),
        reason,
    }
}

fn failed(reason: &str) -> OcrError {
    OcrError::Failed {
        engine: NAME.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step per row: probabilities of classes 0 (blank), 1, 2, 3.
    fn steps(rows: &[[f32; 4]]) -> Vec<f32> {
        rows.iter().flatten().copied().collect()
    }

    #[test]
    fn repeats_merge_and_a_blank_between_equal_classes_keeps_both() {
        let p = steps(&[
            [0.1, 0.9, 0.0, 0.0],
            [0.2, 0.8, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            [0.3, 0.7, 0.0, 0.0],
            [0.1, 0.0, 0.6, 0.3],
        ]);
        let decoded = decode(&p, 4, None);
        assert_eq!(decoded.classes, vec![1, 1, 2]);
        assert!((decoded.least_sure - 0.6).abs() < 1e-6);
    }

    #[test]
    fn a_badge_reads_only_the_classes_it_may_hold() {
        // Class 3 is likelier, but a badge holds only blank and class 2.
        let p = steps(&[[0.1, 0.0, 0.3, 0.6], [0.8, 0.0, 0.1, 0.1]]);
        assert_eq!(decode(&p, 4, Some(&[0, 2])).classes, vec![2]);
        assert_eq!(decode(&p, 4, None).classes, vec![3]);
    }

    #[test]
    fn nothing_but_blanks_reads_as_nothing() {
        let decoded = decode(&steps(&[[0.9, 0.1, 0.0, 0.0]; 3]), 4, None);
        assert!(decoded.classes.is_empty());
        assert_eq!(decoded.least_sure, 1.0);
    }

    #[test]
    fn a_missing_model_names_where_it_looked_and_what_to_run() {
        let dir = std::env::temp_dir().join(format!("tapwire-no-ppocr-{}", std::process::id()));
        let reason = not_installed(std::slice::from_ref(&dir));
        assert!(reason.contains(&dir.display().to_string()), "{reason}");
        assert!(reason.contains("scripts/setup"), "{reason}");
        assert!(matches!(
            PpOcrEngine::from_dir(&dir),
            Err(OcrError::Unavailable { .. })
        ));
    }

    #[test]
    fn the_installed_model_reads_a_line_the_reader_cut() {
        // scripts/setup installs the model; a line drawn as the reader prepares one.
        let mut engine = PpOcrEngine::new().expect("scripts/setup installs the PP-OCR model");
        let font = crate::inspect::find_font().expect("scripts/setup installs DejaVu");
        let mut line = GrayImage::from_pixel(420, 48, image::Luma([255]));
        imageproc::drawing::draw_text_mut(
            &mut line,
            image::Luma([0]),
            10,
            8,
            ab_glyph::PxScale::from(30.0),
            &font,
            "Meeting at 3pm 2026",
        );
        let read = engine.recognise(&line, TextLayout::Line).expect("read");
        assert_eq!(read.text.replace(' ', ""), "Meetingat3pm2026", "{read:?}");
        let blank = GrayImage::from_pixel(200, 48, image::Luma([255]));
        assert_eq!(
            engine
                .recognise(&blank, TextLayout::Line)
                .expect("read")
                .text,
            ""
        );
    }
}
