//! What the phone says about itself: `getprop`, `wm`, `id`, `whoami`, `date`.

use super::CmdOutput;
use crate::device::Device;

pub(super) fn getprop(device: &Device, args: &[&str]) -> CmdOutput {
    let props = device.props_snapshot();
    match args.first() {
        Some(k) => CmdOutput::ok(format!("{}\n", props.get(*k).cloned().unwrap_or_default())),
        None => CmdOutput::ok(
            props
                .iter()
                .map(|(k, v)| format!("[{k}]: [{v}]\n"))
                .collect::<String>(),
        ),
    }
}

pub(super) fn wm(args: &[&str]) -> CmdOutput {
    match args.first() {
        Some(&"size") => CmdOutput::ok("Physical size: 720x1608\n"),
        Some(&"density") => CmdOutput::ok("Physical density: 320\n"),
        _ => CmdOutput::err("Error: unknown command\n", 255),
    }
}

/// adbd runs the shell as the `shell` user with these groups.
pub(super) fn id() -> CmdOutput {
    CmdOutput::ok(
        "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid) context=u:r:shell:s0\n",
    )
}

pub(super) fn whoami() -> CmdOutput {
    CmdOutput::ok("shell\n")
}

/// `date +%s` for epoch seconds; otherwise toybox's default format in the phone's zone.
pub(super) fn date(device: &Device, args: &[&str]) -> CmdOutput {
    let now = device.read(|st| st.clock.now());
    if args.first() == Some(&"+%s") {
        CmdOutput::ok(format!("{now}\n"))
    } else {
        let c = device.read(|st| st.clock.civil(now));
        CmdOutput::ok(format!(
            "{} {} {:>2} {:02}:{:02}:{:02} CST {}\n",
            ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][c.weekday as usize],
            [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
            ][(c.month as usize).saturating_sub(1) % 12],
            c.day,
            c.hour,
            c.minute,
            c.second,
            c.year
        ))
    }
}
