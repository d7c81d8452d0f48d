//! `input`: taps, swipes, key events and ASCII text, as `InputShellCommand` takes them.

use super::{CmdOutput, delay};
use crate::device::Device;

/// Scripts name keys by number, as `KEYCODE_BACK` or as `BACK`; only the keys WeChat reacts
/// to (and a few harmless ones) are known.
fn keycode(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let n = name.strip_prefix("KEYCODE_").unwrap_or(name);
    Some(match n {
        "HOME" => 3,
        "BACK" => 4,
        "DPAD_UP" => 19,
        "DPAD_DOWN" => 20,
        "POWER" => 26,
        "SPACE" => 62,
        "ENTER" => 66,
        "DEL" => 67,
        "MENU" => 82,
        "APP_SWITCH" => 187,
        "WAKEUP" => 224,
        "PASTE" => 279,
        _ => return None,
    })
}

pub(super) async fn run(device: &Device, args: &[&str]) -> CmdOutput {
    // An optional input source comes first: `input touchscreen tap x y`.
    let args: Vec<&str> = match args.first() {
        Some(&("touchscreen" | "keyboard" | "mouse" | "touchpad" | "dpad")) => args[1..].to_vec(),
        _ => args.to_vec(),
    };
    let usage = || {
        CmdOutput::err(
            "Error: Unknown command or invalid arguments\nUsage: input [<source>] <command> [<arg>...]\n",
            255,
        )
    };
    let num = |i: usize| {
        args.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as i32)
    };
    let lat = device.latency();
    match args.first().copied() {
        Some("tap") => {
            let (Some(x), Some(y)) = (num(1), num(2)) else {
                return usage();
            };
            delay(lat.tap_ms).await;
            device.tap(x, y);
            CmdOutput::default()
        }
        Some("swipe") | Some("draganddrop") => {
            let (Some(x1), Some(y1), Some(x2), Some(y2)) = (num(1), num(2), num(3), num(4)) else {
                return usage();
            };
            let ms = num(5).unwrap_or(300).max(0) as u64;
            delay(lat.tap_ms + ms.min(2000)).await;
            device.swipe(x1, y1, x2, y2, ms);
            CmdOutput::default()
        }
        Some("keyevent") => {
            let codes: Vec<&str> = args[1..]
                .iter()
                .filter(|a| !a.starts_with("--"))
                .copied()
                .collect();
            if codes.is_empty() {
                return usage();
            }
            delay(lat.tap_ms).await;
            for c in codes {
                match keycode(c) {
                    Some(k) => device.key(k),
                    None => return CmdOutput::err(format!("Error: Unknown keycode: {c}\n"), 255),
                }
            }
            CmdOutput::default()
        }
        Some("text") => {
            let Some(text) = args.get(1) else {
                return usage();
            };
            delay(lat.input_ms).await;
            // KeyCharacterMap has no events for non-ASCII characters; Input.sendText then
            // dereferences the null array it gets back.
            if !text.is_ascii() {
                return CmdOutput::err(
                    "Exception occurred while executing 'text':\njava.lang.NullPointerException: Attempt to get length of null array\n\tat com.android.server.input.InputShellCommand.sendText(InputShellCommand.java:446)\n",
                    255,
                );
            }
            device.ime_text(&text.replace("%s", " "), "input_text");
            CmdOutput::default()
        }
        _ => usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycodes() {
        assert_eq!(keycode("KEYCODE_BACK"), Some(4));
        assert_eq!(keycode("66"), Some(66));
        assert_eq!(keycode("PASTE"), Some(279));
        assert_eq!(keycode("KEYCODE_NOPE"), None);
    }
}
