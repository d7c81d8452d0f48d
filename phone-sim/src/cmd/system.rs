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

/// `wm size` and `wm density` as WindowManagerShellCommand prints them when nothing is
/// overridden: the screen the dumps and screenshots are drawn on, and `ro.sf.lcd_density`.
pub(super) fn wm(device: &Device, args: &[&str]) -> CmdOutput {
    let screen = device.config().screen;
    // Only the query forms: `-d 0` names the one display, and no override is ever set.
    let query = args.len() == 1 || (args.len() == 3 && args[1] == "-d" && args[2] == "0");
    match args.first() {
        Some(&"size") if query => CmdOutput::ok(format!(
            "Physical size: {}x{}\n",
            screen.width, screen.height
        )),
        Some(&"density") if query => {
            CmdOutput::ok(format!("Physical density: {}\n", screen.density))
        }
        Some(&("size" | "density")) => {
            CmdOutput::err("Error: the phone-sim does not change its display\n", 255)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wm_prints_the_screen_the_sim_draws() {
        let d = crate::build_device(&crate::SimConfig::default()).expect("device");
        let o = wm(&d, &["size"]);
        assert_eq!(o.stdout, b"Physical size: 720x1608\n");
        assert_eq!(wm(&d, &["size", "-d", "0"]).stdout, o.stdout);
        assert_eq!(wm(&d, &["density"]).stdout, b"Physical density: 320\n");
        assert_eq!(wm(&d, &["size", "1080x1920"]).code, 255);
        for (screen, size, density) in [
            (crate::Screen::FHD, "1080x2400", "480"),
            (crate::Screen::QHD, "1440x3200", "640"),
        ] {
            let d = crate::build_device(&crate::SimConfig {
                screen,
                ..crate::SimConfig::default()
            })
            .expect("device");
            assert_eq!(
                wm(&d, &["size"]).stdout,
                format!("Physical size: {size}\n").into_bytes()
            );
            assert_eq!(
                wm(&d, &["density"]).stdout,
                format!("Physical density: {density}\n").into_bytes()
            );
            assert_eq!(d.prop("ro.sf.lcd_density"), density);
        }
    }
}
