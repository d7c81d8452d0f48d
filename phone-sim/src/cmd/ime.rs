//! `ime list|set|enable`: the two keyboards the phone has (the vendor's and the ADB keyboard).

use super::CmdOutput;
use crate::device::{ADB_IME, Device, VENDOR_IME};
use crate::settings::{DEFAULT_INPUT_METHOD, Namespace};

pub(super) fn run(device: &Device, args: &[&str]) -> CmdOutput {
    match args.first().copied() {
        Some("list") => {
            let short = args.contains(&"-s");
            if short {
                CmdOutput::ok(format!("{VENDOR_IME}\n{ADB_IME}\n"))
            } else {
                CmdOutput::ok(format!(
                    "{VENDOR_IME}:\n  mId={VENDOR_IME} mSettingsActivity=com.sohu.inputmethod.sogou.vivo.SogouIMESettingsLauncher\n{ADB_IME}:\n  mId={ADB_IME} mSettingsActivity=null\n"
                ))
            }
        }
        Some("set") => {
            let Some(id) = args.get(1) else {
                return CmdOutput::err("Error: no input method id given\n", 255);
            };
            if *id != ADB_IME && *id != VENDOR_IME {
                return CmdOutput::err(
                    format!("Unknown input method {id} cannot be selected for user #0\n"),
                    255,
                );
            }
            device.with(|st| st.put_setting(Namespace::Secure, DEFAULT_INPUT_METHOD, id));
            CmdOutput::ok(format!("Input method {id} selected for user #0\n"))
        }
        Some("enable") => CmdOutput::ok(format!(
            "Input method {}: already enabled for user #0\n",
            args.get(1).unwrap_or(&"")
        )),
        _ => CmdOutput::err("Error: unknown ime command\n", 255),
    }
}
