//! `pm list packages` and `pm path`: the packages this phone has installed, printed as
//! Android's PackageManagerShellCommand prints them.

use super::CmdOutput;
use crate::device::Device;
use crate::packages::Package;

#[derive(Debug, Default)]
struct ListOptions {
    path: bool,
    disabled_only: bool,
    system_only: bool,
    third_party_only: bool,
    installer: bool,
    uid: bool,
    version_code: bool,
    apex_only: bool,
}

pub(super) fn run(device: &Device, args: &[&str]) -> CmdOutput {
    match args.first().copied() {
        Some("list") => match args.get(1).copied() {
            Some("packages") => list_packages(device, &args[2..]),
            Some(other) => {
                CmdOutput::ok(format!("Error: unknown list type '{other}'\n")).with_code(255)
            }
            None => CmdOutput::ok("Error: didn't specify type of data to list\n").with_code(255),
        },
        Some("path") => path(device, &args[1..]),
        Some(other) => CmdOutput::ok(format!("Unknown command: {other}\n")).with_code(255),
        None => CmdOutput::ok(
            "Package manager (package) commands:\n  help\n      Print this help text.\n",
        )
        .with_code(255),
    }
}

/// Options come first; the first argument that is not one is the filter, a plain substring
/// of the package name, and anything after it is ignored.
fn list_packages(device: &Device, args: &[&str]) -> CmdOutput {
    let mut o = ListOptions::default();
    let mut i = 0;
    while let Some(arg) = args.get(i).copied() {
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        match arg {
            "-d" => o.disabled_only = true,
            "-e" | "-l" | "-u" | "--factory-only" | "-a" => {}
            "-f" => o.path = true,
            "-i" => o.installer = true,
            "-s" => o.system_only = true,
            "-3" => o.third_party_only = true,
            "-U" => o.uid = true,
            "--show-versioncode" => o.version_code = true,
            "--apex-only" => o.apex_only = true,
            "--user" | "--uid" => i += 1,
            _ => return CmdOutput::ok(format!("Error: Unknown option: {arg}\n")).with_code(255),
        }
        i += 1;
    }
    let filter = args.get(i).copied().unwrap_or("");
    let lines = device.read(|st| {
        st.packages
            .installed()
            .filter(|p| !o.system_only || p.system)
            .filter(|p| !o.third_party_only || !p.system)
            // Nothing here is disabled and nothing is an APEX.
            .filter(|_| !o.disabled_only && !o.apex_only)
            .filter(|p| p.name.contains(filter))
            .map(|p| line(p, &o))
            .collect::<String>()
    });
    CmdOutput::ok(lines)
}

fn line(p: &Package, o: &ListOptions) -> String {
    let mut s = String::from("package:");
    if o.path {
        s.push_str(p.apk);
        s.push('=');
    }
    s.push_str(p.name);
    if o.version_code {
        s.push_str(&format!(" versionCode:{}", p.version_code));
    }
    if o.installer {
        // Two spaces: that is what the shell command prints.
        s.push_str(&format!("  installer={}", p.installer));
    }
    if o.uid {
        s.push_str(&format!(" uid:{}", p.uid));
    }
    s.push('\n');
    s
}

/// A package that is not installed prints nothing and fails with status 1.
fn path(device: &Device, args: &[&str]) -> CmdOutput {
    let mut i = 0;
    while args.get(i) == Some(&"--user") {
        i += 2;
    }
    let Some(name) = args.get(i) else {
        return CmdOutput::err("Error: no package specified\n", 1);
    };
    match device.read(|st| st.packages.get(name)) {
        Some(p) => CmdOutput::ok(format!("package:{}\n", p.apk)),
        None => CmdOutput {
            code: 1,
            ..CmdOutput::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::{DIANMING_PKG, TALKBACK_PKG};

    fn phone(suite: bool, dianming: bool) -> Device {
        crate::build_device(&crate::SimConfig {
            scenario: crate::Scenario::default(),
            accessibility_suite: suite,
            dianming,
            ..crate::SimConfig::default()
        })
        .expect("device")
    }

    fn pm(d: &Device, line: &str) -> CmdOutput {
        let args: Vec<&str> = line.split_whitespace().collect();
        run(d, &args)
    }

    fn out(o: &CmdOutput) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    #[test]
    fn lists_filter_by_substring_and_by_kind() {
        let d = phone(true, false);
        assert_eq!(
            out(&pm(&d, "list packages talkback")),
            format!("package:{TALKBACK_PKG}\n")
        );
        let o = pm(&d, "list packages dianming");
        assert_eq!(
            (o.stdout.len(), o.stderr.len(), o.code),
            (0, 0, 0),
            "no match: nothing, status 0"
        );
        let third = out(&pm(&d, "list packages -3"));
        assert!(third.contains("package:com.tencent.mm\n"));
        assert!(
            !third.contains("talkback"),
            "the suite ships with the system image"
        );
        assert!(out(&pm(&d, "list packages -s")).contains(TALKBACK_PKG));
        assert_eq!(
            out(&pm(&d, "list packages -f -U --show-versioncode -i tencent")),
            "package:/data/app/~~Qm8cVnZ2kX1_2rPa==/com.tencent.mm-Jx1n4q==/base.apk=com.tencent.mm versionCode:2840  installer=com.bbk.appstore uid:10245\n"
        );
        assert_eq!(
            out(&pm(&d, "list packages --user 0 -3 clipper")),
            "package:ca.zgrs.clipper\n"
        );
        let o = pm(&d, "list packages -z");
        assert_eq!(
            (out(&o).as_str(), o.code),
            ("Error: Unknown option: -z\n", 255)
        );
    }

    #[test]
    fn installed_packages_are_a_setting_of_the_phone() {
        let d = phone(false, true);
        assert!(out(&pm(&d, "list packages talkback")).is_empty());
        assert_eq!(
            out(&pm(&d, "list packages phoneapp")),
            format!("package:{DIANMING_PKG}\n")
        );
        let o = pm(&d, &format!("path {TALKBACK_PKG}"));
        assert_eq!(
            (o.stdout.len(), o.code),
            (0, 1),
            "missing: nothing, status 1"
        );
        let o = pm(&d, &format!("path {DIANMING_PKG}"));
        assert!(out(&o).starts_with("package:/data/app/") && out(&o).ends_with("/base.apk\n"));
        assert_eq!(o.code, 0);
        d.with(|st| st.packages.install(TALKBACK_PKG).expect("optional"));
        assert_eq!(
            out(&pm(&d, &format!("path {TALKBACK_PKG}"))),
            "package:/product/app/talkback/talkback.apk\n"
        );
    }
}
