//! `cat`, `ls` and `rm` over the phone's in-memory file system (`/sdcard`, dump targets).

use super::CmdOutput;
use crate::device::Device;
use crate::fs::S_IFDIR;

/// Without arguments `cat` copies stdin, as at the end of a pipe.
pub(super) fn cat(device: &Device, args: &[&str], stdin: Option<Vec<u8>>) -> CmdOutput {
    if args.is_empty() {
        CmdOutput::ok(stdin.unwrap_or_default())
    } else {
        let mut out = CmdOutput::default();
        for p in args {
            match device.fs_read(p) {
                Ok(d) => out.stdout.extend(d),
                Err(e) => {
                    out.stderr.extend(format!("cat: {p}: {e}\n").into_bytes());
                    out.code = 1;
                }
            }
        }
        out
    }
}

pub(super) fn rm(device: &Device, args: &[&str]) -> CmdOutput {
    let force = args.iter().any(|a| a.starts_with('-') && a.contains('f'));
    let mut out = CmdOutput::default();
    for p in args.iter().filter(|a| !a.starts_with('-')) {
        if let Err(e) = device.with(|st| st.fs.remove(p))
            && !force
        {
            out.stderr.extend(format!("rm: {p}: {e}\n").into_bytes());
            out.code = 1;
        }
    }
    out
}

pub(super) fn ls(device: &Device, args: &[&str]) -> CmdOutput {
    let long = args.iter().any(|a| a.starts_with('-') && a.contains('l'));
    let path = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .copied()
        .unwrap_or("/");
    match device.fs_stat(path) {
        None => CmdOutput::err(format!("ls: {path}: No such file or directory\n"), 1),
        Some(st) if st.mode & S_IFDIR == 0 => CmdOutput::ok(format!("{path}\n")),
        Some(_) => {
            let entries = device.fs_list(path);
            let mut s = String::new();
            for (n, st) in entries.iter().filter(|(n, _)| n != "." && n != "..") {
                if long {
                    let kind = if st.mode & S_IFDIR != 0 {
                        "drwxrwx--x"
                    } else {
                        "-rw-rw----"
                    };
                    s.push_str(&format!(
                        "{kind} 1 u0_a245 media_rw {:>8} 2026-01-08 11:49 {n}\n",
                        st.size
                    ));
                } else {
                    s.push_str(&format!("{n}\n"));
                }
            }
            CmdOutput::ok(s)
        }
    }
}
