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
        device.screencap_raw()
    };
    match file {
        None => CmdOutput::ok(data),
        Some(f) => match device.fs_write(f, data, 0o660, 0) {
            Ok(()) => CmdOutput::default(),
            Err(e) => CmdOutput::err(format!("Error opening file: {f} ({e})\n"), 1),
        },
    }
}
