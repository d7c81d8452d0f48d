//! `screencap`: PNG with `-p` (or a `.png` file name), otherwise Android's raw RGBA layout.

use super::{CmdOutput, delay};
use crate::device::Device;

pub(super) async fn run(device: &Device, args: &[&str]) -> CmdOutput {
    delay(device.latency().screencap_ms).await;
    let png_flag = args.contains(&"-p");
    let file = args.iter().find(|a| !a.starts_with('-')).copied();
    let as_png = png_flag || file.is_some_and(|f| f.ends_with(".png"));
    let data = if as_png {
        match device.screencap_png() {
            Ok(p) => p,
            Err(e) => return CmdOutput::err(format!("Error: {e}\n"), 1),
        }
    } else {
        raw_screencap(device)
    };
    match file {
        None => CmdOutput::ok(data),
        Some(f) => match device.fs_write(f, data, 0o660, 0) {
            Ok(()) => CmdOutput::default(),
            Err(e) => CmdOutput::err(format!("Error opening file: {f} ({e})\n"), 1),
        },
    }
}

/// `screencap` without `-p`: width, height, format (1 = RGBA_8888), colour space, then pixels.
fn raw_screencap(device: &Device) -> Vec<u8> {
    let png = device.screencap_png().unwrap_or_default();
    let rgba = image::load_from_memory(&png)
        .map(|i| i.to_rgba8().into_raw())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(16 + rgba.len());
    for w in [720u32, 1608, 1, 1] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend(rgba);
    out
}
