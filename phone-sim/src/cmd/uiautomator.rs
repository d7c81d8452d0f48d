//! `uiautomator dump`: the view tree as XML, to a file or to `/dev/tty`, with the failures real
//! phones show while the screen is changing.

use super::{CmdOutput, delay};
use crate::device::Device;

pub(super) async fn run(device: &Device, args: &[&str]) -> CmdOutput {
    if args.first() != Some(&"dump") {
        return CmdOutput::err(
            "Usage: uiautomator <subcommand> [options]\n\nAvailable subcommands:\n\nhelp: displays help message\n\nruntest: executes UI automation tests\n\ndump: creates an XML dump of current UI hierarchy\n\nevents: prints out accessibility events until terminated\n",
            1,
        );
    }
    delay(device.latency().dump_ms).await;
    let fault = device.with(|st| {
        if st.faults.dump_idle_errors > 0 {
            st.faults.dump_idle_errors -= 1;
            Some("ERROR: could not get idle state.\n")
        } else if st.faults.dump_null_root > 0 {
            st.faults.dump_null_root -= 1;
            Some("ERROR: null root node returned by UiTestAutomationBridge.\n")
        } else {
            None
        }
    });
    if let Some(msg) = fault {
        return CmdOutput::err(msg, 1);
    }
    let target = args
        .iter()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .copied()
        .unwrap_or("/sdcard/window_dump.xml");
    let xml = device.dump_xml();
    if target == "/dev/tty" {
        let mut out = xml.into_bytes();
        out.extend_from_slice(b"UI hierchary dumped to: /dev/tty\n");
        return CmdOutput::ok(out);
    }
    let now = device.read(|st| st.clock.now());
    match device.fs_write(target, xml.into_bytes(), 0o660, now) {
        Ok(()) => CmdOutput::ok(format!("UI hierchary dumped to: {target}\n")),
        Err(e) => CmdOutput::err(
            format!("java.io.FileNotFoundException: {target}: open failed: ENOENT ({e})\n"),
            1,
        ),
    }
}
