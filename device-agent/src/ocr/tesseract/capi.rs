//! libtesseract's C API (`tesseract/capi.h`), opened when the first engine is made rather
//! than linked into the binary.
//!
//! Why not the `tesseract` crate: it links libtesseract at build time, and with it the
//! dynamic loader maps about fifty libraries into every `tapwire` process (leptonica,
//! libarchive, libcurl with its TLS and Kerberos stacks, ICU …): about 10 MiB of resident
//! memory in a controller whose phones all show their UI tree and never read a pixel, and a
//! binary that does not start at all on a machine without libtesseract. Opened here, they
//! load the first time a phone needs OCR, and a missing library is one clear error then.
//!
//! The functions below are the stable C API that every tesseract since 4.0 exports with
//! these signatures (capi.h: `BOOL` is `int`, enums are `int`-sized); a loaded library is
//! kept for the life of the process.

// The only unsafe code of the workspace: calls into C, each with its SAFETY note.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

use libloading::Library;

/// A path to the library, for a tesseract installed where the loader does not look.
pub const LIBRARY_ENV: &str = "TAPWIRE_LIBTESSERACT";

/// capi.h's `TessPageSegMode` values used here (publictypes.h).
pub const PSM_SINGLE_BLOCK: c_int = 6;
pub const PSM_SINGLE_LINE: c_int = 7;
pub const PSM_SINGLE_WORD: c_int = 8;
pub const PSM_SINGLE_CHAR: c_int = 10;
pub const PSM_RAW_LINE: c_int = 13;
/// capi.h's `TessOcrEngineMode::OEM_LSTM_ONLY`.
const OEM_LSTM_ONLY: c_int = 1;

type Handle = *mut c_void;

/// The entry points, resolved once. The `Library` they came from is kept beside them, so
/// they stay valid as long as this value, which lives in a static.
struct Capi {
    version: String,
    create: unsafe extern "C" fn() -> Handle,
    delete: unsafe extern "C" fn(Handle),
    init2: unsafe extern "C" fn(Handle, *const c_char, *const c_char, c_int) -> c_int,
    set_variable: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    set_page_seg_mode: unsafe extern "C" fn(Handle, c_int),
    set_image: unsafe extern "C" fn(Handle, *const u8, c_int, c_int, c_int, c_int),
    set_source_resolution: unsafe extern "C" fn(Handle, c_int),
    recognize: unsafe extern "C" fn(Handle, *mut c_void) -> c_int,
    get_utf8_text: unsafe extern "C" fn(Handle) -> *mut c_char,
    delete_text: unsafe extern "C" fn(*const c_char),
    all_word_confidences: unsafe extern "C" fn(Handle) -> *mut c_int,
    delete_int_array: unsafe extern "C" fn(*const c_int),
    mean_text_conf: unsafe extern "C" fn(Handle) -> c_int,
    _library: Library,
}

/// Where the library is looked for, in order: the loader's own search (ld.so.cache on
/// Linux), then Homebrew's prefixes, which macOS's loader does not search by name.
fn candidates() -> Vec<String> {
    let mut names: Vec<String> = std::env::var(LIBRARY_ENV).into_iter().collect();
    if cfg!(target_os = "macos") {
        for prefix in ["/opt/homebrew/lib", "/usr/local/lib", "/opt/local/lib"] {
            for file in ["libtesseract.5.dylib", "libtesseract.dylib"] {
                names.push(format!("{prefix}/{file}"));
            }
        }
        names.push("libtesseract.dylib".into());
    } else {
        // The versioned names come with the runtime package (Debian `libtesseract5`); the
        // bare one only with the -dev package.
        for file in ["libtesseract.so.5", "libtesseract.so.4", "libtesseract.so"] {
            names.push(file.into());
        }
    }
    names
}

/// The loaded C API, or why it could not be loaded (what to install).
fn capi() -> Result<&'static Capi, String> {
    static CAPI: OnceLock<Result<Capi, String>> = OnceLock::new();
    CAPI.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Capi, String> {
    let mut tried = Vec::new();
    for name in candidates() {
        // SAFETY: loading runs the library's initialisers; libtesseract's are the C++
        // runtime's static constructors, which have no preconditions on us.
        match unsafe { Library::new(&name) } {
            Ok(library) => {
                let capi = resolve(library).map_err(|e| format!("{name}: {e}"))?;
                tracing::info!(library = %name, version = %capi.version, "libtesseract loaded");
                return Ok(capi);
            }
            Err(error) => tried.push(format!("{name} ({error})")),
        }
    }
    Err(format!(
        "libtesseract was not found (run scripts/setup: Debian `tesseract-ocr`, macOS `brew \
         install tesseract`; or set {LIBRARY_ENV} to its path). Tried: {}",
        tried.join("; ")
    ))
}

fn resolve(library: Library) -> Result<Capi, libloading::Error> {
    // SAFETY: each symbol is read as the type capi.h declares for it.
    unsafe {
        let version: unsafe extern "C" fn() -> *const c_char = *library.get(b"TessVersion\0")?;
        let version = CStr::from_ptr(version()).to_string_lossy().into_owned();
        Ok(Capi {
            version,
            create: *library.get(b"TessBaseAPICreate\0")?,
            delete: *library.get(b"TessBaseAPIDelete\0")?,
            init2: *library.get(b"TessBaseAPIInit2\0")?,
            set_variable: *library.get(b"TessBaseAPISetVariable\0")?,
            set_page_seg_mode: *library.get(b"TessBaseAPISetPageSegMode\0")?,
            set_image: *library.get(b"TessBaseAPISetImage\0")?,
            set_source_resolution: *library.get(b"TessBaseAPISetSourceResolution\0")?,
            recognize: *library.get(b"TessBaseAPIRecognize\0")?,
            get_utf8_text: *library.get(b"TessBaseAPIGetUTF8Text\0")?,
            delete_text: *library.get(b"TessDeleteText\0")?,
            all_word_confidences: *library.get(b"TessBaseAPIAllWordConfidences\0")?,
            delete_int_array: *library.get(b"TessDeleteIntArray\0")?,
            mean_text_conf: *library.get(b"TessBaseAPIMeanTextConf\0")?,
            _library: library,
        })
    }
}

/// The version of the loaded library (`5.3.0`), loading it if need be.
pub fn version() -> Result<&'static str, String> {
    capi().map(|capi| capi.version.as_str())
}

/// One `TessBaseAPI`, initialised with a language list; deleted when dropped.
pub struct BaseApi {
    capi: &'static Capi,
    handle: Handle,
}

// SAFETY: a TessBaseAPI holds no thread-local state; it may move between threads as long
// as one thread uses it at a time, which `&mut self` on every call ensures.
unsafe impl Send for BaseApi {}

/// Why a call into libtesseract failed.
#[derive(Debug, thiserror::Error)]
pub enum CapiError {
    #[error("{0}")]
    Unavailable(String),
    #[error("libtesseract could not load {0}")]
    Init(String),
    #[error("the image does not fit its buffer ({width}×{height}, {len} bytes)")]
    BadImage { width: u32, height: u32, len: usize },
    #[error("{0} was refused")]
    Refused(&'static str),
}

impl BaseApi {
    /// Loads `languages` (`chi_sim+eng`, `+`-separated) from the data directory tesseract
    /// was built with, or `TESSDATA_PREFIX` when set, for the LSTM engine.
    pub fn new(languages: &CStr) -> Result<BaseApi, CapiError> {
        let capi = capi().map_err(CapiError::Unavailable)?;
        // SAFETY: TessBaseAPICreate has no preconditions; a null result is checked.
        let handle = unsafe { (capi.create)() };
        if handle.is_null() {
            return Err(CapiError::Init(languages.to_string_lossy().into_owned()));
        }
        let api = BaseApi { capi, handle };
        // SAFETY: a live handle, a null datapath (tesseract's default) and a C string.
        let status = unsafe {
            (capi.init2)(
                api.handle,
                std::ptr::null(),
                languages.as_ptr(),
                OEM_LSTM_ONLY,
            )
        };
        if status != 0 {
            return Err(CapiError::Init(languages.to_string_lossy().into_owned()));
        }
        Ok(api)
    }

    pub fn set_page_seg_mode(&mut self, mode: c_int) {
        // SAFETY: a live handle; tesseract checks the mode's range itself.
        unsafe { (self.capi.set_page_seg_mode)(self.handle, mode) }
    }

    pub fn set_variable(&mut self, name: &'static CStr, value: &CStr) -> Result<(), CapiError> {
        // SAFETY: a live handle and two C strings tesseract copies.
        let known = unsafe { (self.capi.set_variable)(self.handle, name.as_ptr(), value.as_ptr()) };
        if known == 0 {
            return Err(CapiError::Refused("a tesseract variable"));
        }
        Ok(())
    }

    /// Sets one-byte grey pixels, row after row, as the image to read. Tesseract keeps a
    /// copy, so `pixels` need not outlive the call.
    pub fn set_grey_image(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
    ) -> Result<(), CapiError> {
        let bad = || CapiError::BadImage {
            width,
            height,
            len: pixels.len(),
        };
        let (w, h) = (
            c_int::try_from(width).map_err(|_| bad())?,
            c_int::try_from(height).map_err(|_| bad())?,
        );
        if (width as usize).checked_mul(height as usize) != Some(pixels.len()) || w == 0 || h == 0 {
            return Err(bad());
        }
        // SAFETY: `pixels` holds exactly width × height bytes, one per pixel, rows of
        // `width` bytes, as the arguments say; tesseract copies them into its own Pix.
        unsafe { (self.capi.set_image)(self.handle, pixels.as_ptr(), w, h, 1, w) };
        Ok(())
    }

    pub fn set_source_resolution(&mut self, ppi: c_int) {
        // SAFETY: a live handle.
        unsafe { (self.capi.set_source_resolution)(self.handle, ppi) }
    }

    pub fn recognize(&mut self) -> Result<(), CapiError> {
        // SAFETY: a live handle with an image set; a null monitor is allowed.
        let status = unsafe { (self.capi.recognize)(self.handle, std::ptr::null_mut()) };
        if status != 0 {
            return Err(CapiError::Refused("recognition"));
        }
        Ok(())
    }

    /// The text recognised last, or None when tesseract had none to give.
    pub fn utf8_text(&mut self) -> Option<String> {
        // SAFETY: a live handle; the returned string is tesseract's, freed below with the
        // function capi.h names for it.
        unsafe {
            let text = (self.capi.get_utf8_text)(self.handle);
            if text.is_null() {
                return None;
            }
            let owned = CStr::from_ptr(text).to_string_lossy().into_owned();
            (self.capi.delete_text)(text);
            Some(owned)
        }
    }

    /// Each word's confidence (0–100) of the last recognition.
    pub fn word_confidences(&mut self) -> Vec<i32> {
        // SAFETY: a live handle; the array is terminated by -1 (capi.h), owned by
        // tesseract and freed below with the function capi.h names for it.
        unsafe {
            let array = (self.capi.all_word_confidences)(self.handle);
            if array.is_null() {
                return Vec::new();
            }
            let mut confidences = Vec::new();
            let mut at = array;
            while *at != -1 {
                confidences.push(*at);
                at = at.add(1);
            }
            (self.capi.delete_int_array)(array);
            confidences
        }
    }

    /// The mean confidence (0–100) of the last recognition.
    pub fn mean_text_conf(&mut self) -> i32 {
        // SAFETY: a live handle.
        unsafe { (self.capi.mean_text_conf)(self.handle) }
    }
}

impl Drop for BaseApi {
    fn drop(&mut self) {
        // SAFETY: the handle came from TessBaseAPICreate and is deleted once.
        unsafe { (self.capi.delete)(self.handle) }
    }
}

/// A C string for a language list, or None when it holds a NUL.
pub fn language_list(languages: &str) -> Option<CString> {
    CString::new(languages).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_library_loads_and_says_its_version() {
        let version = version().expect("scripts/setup installs libtesseract");
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("version {version:?}"));
        assert!(major >= 4, "{version}");
    }

    #[test]
    fn an_image_that_does_not_fit_its_buffer_is_refused() {
        let mut api = BaseApi::new(c"eng").expect("eng data is installed");
        assert!(matches!(
            api.set_grey_image(&[255; 10], 4, 4),
            Err(CapiError::BadImage { .. })
        ));
        assert!(matches!(
            api.set_grey_image(&[], 0, 0),
            Err(CapiError::BadImage { .. })
        ));
        api.set_grey_image(&[255; 16], 4, 4)
            .expect("a fitting image");
    }
}
