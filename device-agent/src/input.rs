//! Typing text into the focused field. `input text` only takes ASCII, so Unicode goes
//! through the ADB keyboard IME's broadcast or through the clipboard and a paste key.

use base64::Engine as _;

use crate::transport::{Transport, TransportError, shell_quote};

/// Android's KEYCODE_PASTE.
pub const KEYCODE_PASTE: u32 = 279;
pub const KEYCODE_DEL: u32 = 67;
pub const KEYCODE_BACK: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputMethod {
    /// senzhk/ADBKeyBoard: `am broadcast -a ADB_INPUT_B64 --es msg <base64>`; needs the IME
    /// installed and selected.
    AdbKeyboard,
    /// Clipper's `clipper.set` broadcast, then KEYCODE_PASTE.
    Clipboard,
    /// `input text`: ASCII only.
    InputText,
}

/// The order methods are tried in when a typed text does not show up in the input box.
pub const DEFAULT_METHODS: &[InputMethod] = &[
    InputMethod::AdbKeyboard,
    InputMethod::Clipboard,
    InputMethod::InputText,
];

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("`{command}` failed: {output}")]
    Rejected { command: String, output: String },
}

impl InputMethod {
    pub fn supports(self, text: &str) -> bool {
        match self {
            // `input text` mangles anything outside printable ASCII, newlines included.
            InputMethod::InputText => text.bytes().all(|b| (0x20..0x7f).contains(&b)),
            _ => true,
        }
    }

    /// The shell commands that type `text`, in order.
    pub fn commands(self, text: &str) -> Vec<String> {
        match self {
            InputMethod::AdbKeyboard => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                // `-p` names the receiver: Android 13+ drops implicit broadcasts otherwise.
                vec![format!(
                    "am broadcast -a ADB_INPUT_B64 -p com.android.adbkeyboard --es msg {encoded}"
                )]
            }
            InputMethod::Clipboard => vec![
                format!("am broadcast -a clipper.set -e text {}", shell_quote(text)),
                format!("input keyevent {KEYCODE_PASTE}"),
            ],
            InputMethod::InputText => {
                // `input text` reads `%s` as a space; the rest is quoted for sh.
                let escaped = text.replace('%', "\\%").replace(' ', "%s");
                vec![format!("input text {}", shell_quote(&escaped))]
            }
        }
    }

    pub fn type_text(self, transport: &mut dyn Transport, text: &str) -> Result<(), InputError> {
        for command in self.commands(text) {
            let output = transport.shell(&command)?;
            let stdout = output.stdout_text();
            let failed = !output.success()
                || stdout.contains("Exception")
                || (command.starts_with("am broadcast") && !stdout.contains("Broadcast completed"));
            if failed {
                return Err(InputError::Rejected {
                    command,
                    output: format!("{}{}", stdout.trim(), output.stderr_text().trim()),
                });
            }
        }
        Ok(())
    }
}

/// Deletes `count` characters before the cursor in one shell call.
pub fn delete_command(count: usize) -> String {
    let keys = vec![KEYCODE_DEL.to_string(); count.max(1)];
    format!("input keyevent {}", keys.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adb_keyboard_sends_base64() {
        let cmds = InputMethod::AdbKeyboard.commands("你好 😀");
        assert_eq!(cmds.len(), 1);
        let b64 = cmds[0].rsplit(' ').next().expect("arg");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        assert_eq!(String::from_utf8(decoded).expect("utf8"), "你好 😀");
    }

    #[test]
    fn input_text_is_ascii_only_and_escapes_spaces() {
        assert!(InputMethod::InputText.supports("hello world"));
        assert!(!InputMethod::InputText.supports("你好"));
        assert!(!InputMethod::InputText.supports("a\nb"));
        assert_eq!(
            InputMethod::InputText.commands("a b's"),
            vec![r"input text 'a%sb'\''s'".to_string()]
        );
    }

    #[test]
    fn clipboard_pastes_after_setting() {
        let cmds = InputMethod::Clipboard.commands("x y");
        assert_eq!(cmds[0], "am broadcast -a clipper.set -e text 'x y'");
        assert_eq!(cmds[1], "input keyevent 279");
    }
}
