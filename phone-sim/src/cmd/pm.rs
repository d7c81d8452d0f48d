//! `pm list packages` and `pm path`: the packages this phone has installed.

use super::CmdOutput;

/// What a vivo phone with WeChat, the ADB keyboard and a clipboard helper lists.
const INSTALLED: [&str; 9] = [
    "android",
    "com.android.systemui",
    "com.android.settings",
    "com.bbk.launcher2",
    "com.vivo.upslide",
    "com.tencent.mm",
    "com.android.adbkeyboard",
    "ca.zgrs.clipper",
    "com.sohu.inputmethod.sogou.vivo",
];

pub(super) fn run(args: &[&str]) -> CmdOutput {
    match args.first() {
        Some(&"list") if args.get(1) == Some(&"packages") => {
            let filter = args
                .iter()
                .skip(2)
                .find(|a| !a.starts_with('-'))
                .copied()
                .unwrap_or("");
            CmdOutput::ok(
                INSTALLED
                    .iter()
                    .filter(|p| p.contains(filter))
                    .map(|p| format!("package:{p}\n"))
                    .collect::<String>(),
            )
        }
        Some(&"path") if args.get(1) == Some(&"com.tencent.mm") => CmdOutput::ok(
            "package:/data/app/~~Qm8cVnZ2kX1_2rPa==/com.tencent.mm-Jx1n4q==/base.apk\n",
        ),
        _ => CmdOutput::err("Error: unknown pm command\n", 255),
    }
}
