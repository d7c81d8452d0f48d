//! The phone's shell: runs the command lines adb clients send and prints what Android prints.

pub mod parse;

use std::time::Duration;

use base64::Engine as _;
use tokio::sync::broadcast;

use crate::device::{ADB_IME, Device, VENDOR_IME, WECHAT_PID, WECHAT_UID};
use crate::wechat::model::{Screen, WeChat};
use parse::{Connector, LAST_STATUS, Redirect, Simple};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: u8,
}

impl CmdOutput {
    fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        CmdOutput {
            stdout: stdout.into(),
            stderr: Vec::new(),
            code: 0,
        }
    }
    fn err(stderr: impl Into<Vec<u8>>, code: u8) -> Self {
        CmdOutput {
            stdout: Vec::new(),
            stderr: stderr.into(),
            code,
        }
    }
}

/// A line filter (`grep`) applied to a following command's output.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pattern: Vec<String>,
    invert: bool,
    ignore_case: bool,
}

impl LineFilter {
    fn matches(&self, line: &str) -> bool {
        let hit = self.pattern.iter().any(|p| {
            if self.ignore_case {
                line.to_lowercase().contains(&p.to_lowercase())
            } else {
                line.contains(p.as_str())
            }
        });
        hit != self.invert
    }
}

/// A command that keeps printing (`logcat` without `-d`) until the host closes the stream.
pub struct Follow {
    pub rx: broadcast::Receiver<String>,
    filters: Vec<LineFilter>,
}

impl Follow {
    pub fn filter(&self, line: &str) -> Option<String> {
        self.filters
            .iter()
            .all(|f| f.matches(line))
            .then(|| line.to_string())
    }
}

pub struct Execution {
    pub output: CmdOutput,
    pub follow: Option<Follow>,
}

/// Runs a whole command line.
pub async fn execute(device: &Device, line: &str) -> Execution {
    let steps = match parse::parse(line) {
        Ok(s) => s,
        Err(e) => {
            return Execution {
                output: CmdOutput::err(format!("/system/bin/sh: {e}\n"), 2),
                follow: None,
            };
        }
    };
    let mut total = CmdOutput::default();
    let mut last = 0u8;
    let mut skip = false;
    for step in steps {
        if !skip {
            let (out, follow) = run_pipeline(device, &step.pipeline, last).await;
            total.stdout.extend(out.stdout);
            total.stderr.extend(out.stderr);
            last = out.code;
            if follow.is_some() {
                total.code = last;
                return Execution {
                    output: total,
                    follow,
                };
            }
        }
        skip = match step.then {
            Connector::Always => false,
            Connector::And => last != 0,
            Connector::Or => last == 0,
        };
    }
    total.code = last;
    Execution {
        output: total,
        follow: None,
    }
}

fn expand(s: &Simple, last: u8) -> Simple {
    let sub = |w: &String| w.replace(LAST_STATUS, &last.to_string());
    Simple {
        argv: s.argv.iter().map(sub).collect(),
        redirects: s
            .redirects
            .iter()
            .map(|r| match r {
                Redirect::StdoutTo(p) => Redirect::StdoutTo(sub(p)),
                Redirect::StdoutAppend(p) => Redirect::StdoutAppend(sub(p)),
                Redirect::StderrTo(p) => Redirect::StderrTo(sub(p)),
                Redirect::StderrToStdout => Redirect::StderrToStdout,
            })
            .collect(),
    }
}

async fn run_pipeline(
    device: &Device,
    pipeline: &[Simple],
    last: u8,
) -> (CmdOutput, Option<Follow>) {
    let mut stdin: Option<Vec<u8>> = None;
    let mut stderr = Vec::new();
    let mut out = CmdOutput::default();
    let mut follow: Option<Follow> = None;
    for (i, cmd) in pipeline.iter().enumerate() {
        let cmd = expand(cmd, last);
        if let Some(f) = follow.as_mut() {
            // Downstream of a following command only grep is meaningful: it filters each line.
            if cmd.argv.first().map(String::as_str) == Some("grep")
                && let Some(filter) = grep_filter(&cmd.argv[1..])
            {
                f.filters.push(filter);
            }
            continue;
        }
        let (mut o, fl) = run_simple(device, &cmd.argv, stdin.take()).await;
        follow = fl;
        for r in &cmd.redirects {
            match r {
                Redirect::StderrToStdout => {
                    let e = std::mem::take(&mut o.stderr);
                    o.stdout.extend(e);
                }
                Redirect::StderrTo(p) => {
                    let e = std::mem::take(&mut o.stderr);
                    if p != "/dev/null" {
                        let _ = device.fs_write(p, e, 0o644, 0);
                    }
                }
                Redirect::StdoutTo(p) | Redirect::StdoutAppend(p) => {
                    let data = std::mem::take(&mut o.stdout);
                    if p != "/dev/null" && p != "/dev/tty" {
                        let mut content = match r {
                            Redirect::StdoutAppend(_) => device.fs_read(p).unwrap_or_default(),
                            _ => Vec::new(),
                        };
                        content.extend(data);
                        if let Err(e) = device.fs_write(p, content, 0o644, 0) {
                            o.stderr.extend(
                                format!("/system/bin/sh: can't create {p}: {e}\n").into_bytes(),
                            );
                            o.code = 1;
                        }
                    } else if p == "/dev/tty" {
                        o.stdout = data;
                    }
                }
            }
        }
        stderr.extend(std::mem::take(&mut o.stderr));
        if i + 1 < pipeline.len() {
            stdin = Some(std::mem::take(&mut o.stdout));
        }
        out = o;
    }
    out.stderr = stderr;
    (out, follow)
}

fn not_found(name: &str) -> CmdOutput {
    // mksh on Android words it this way, and exits 127.
    CmdOutput::err(
        format!("/system/bin/sh: {name}: inaccessible or not found\n"),
        127,
    )
}

fn text_of(stdin: &Option<Vec<u8>>) -> String {
    stdin
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn grep_filter(args: &[String]) -> Option<LineFilter> {
    let mut invert = false;
    let mut ignore_case = false;
    let mut extended = false;
    let mut pattern = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-e" => pattern = it.next().cloned(),
            s if s.starts_with('-') && s.len() > 1 && pattern.is_none() => {
                for c in s[1..].chars() {
                    match c {
                        'v' => invert = true,
                        'i' => ignore_case = true,
                        'E' => extended = true,
                        _ => {}
                    }
                }
            }
            _ if pattern.is_none() => pattern = Some(a.clone()),
            _ => {}
        }
    }
    let pattern = pattern?;
    // Alternation is the only regex feature scripts use with these outputs.
    let pattern = if extended {
        pattern.split('|').map(str::to_string).collect()
    } else {
        pattern.split("\\|").map(str::to_string).collect()
    };
    Some(LineFilter {
        pattern,
        invert,
        ignore_case,
    })
}

async fn delay(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn focus_component(w: &WeChat) -> (&'static str, &'static str) {
    if !w.foreground {
        return (
            "com.bbk.launcher2/com.bbk.launcher2.Launcher",
            "com.bbk.launcher2/.Launcher",
        );
    }
    match w.screen {
        Screen::List => (
            "com.tencent.mm/com.tencent.mm.ui.LauncherUI",
            "com.tencent.mm/.ui.LauncherUI",
        ),
        Screen::Chat(_) => (
            "com.tencent.mm/com.tencent.mm.ui.chatting.ChattingUI",
            "com.tencent.mm/.ui.chatting.ChattingUI",
        ),
    }
}

/// Runs one simple command.
async fn run_simple(
    device: &Device,
    argv: &[String],
    stdin: Option<Vec<u8>>,
) -> (CmdOutput, Option<Follow>) {
    let Some(name) = argv.first() else {
        return (CmdOutput::default(), None);
    };
    let name = name.rsplit('/').next().unwrap_or(name).to_string();
    device.stats().add_command(&name);
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let out = match name.as_str() {
        "logcat" => return logcat(device, &args),
        "sh" | "mksh" => {
            if args.first() == Some(&"-c") {
                let Some(script) = args.get(1) else {
                    return (
                        CmdOutput::err("/system/bin/sh: -c: option requires an argument\n", 2),
                        None,
                    );
                };
                let ex = Box::pin(execute(device, script)).await;
                return (ex.output, ex.follow);
            }
            CmdOutput::default()
        }
        // adb's own `logcat` sends `export ANDROID_LOG_TAGS="" ; exec logcat …`.
        "exec" => return Box::pin(run_simple(device, &argv[1..], stdin)).await,
        "export" | "unset" | "set" | "cd" | ":" => CmdOutput::default(),
        "echo" => echo(&args),
        "true" => CmdOutput::default(),
        "false" => CmdOutput::err("", 1),
        "exit" => CmdOutput::err("", args.first().and_then(|a| a.parse().ok()).unwrap_or(0)),
        "sleep" => {
            let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
            tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 30.0))).await;
            CmdOutput::default()
        }
        "uiautomator" => uiautomator(device, &args).await,
        "screencap" => screencap(device, &args).await,
        "input" => input(device, &args).await,
        "am" => am(device, &args).await,
        "monkey" => {
            if args.contains(&"com.tencent.mm") {
                device.with(|st| st.wechat.bring_to_front());
                CmdOutput::ok(
                    "  bash arg: -p\n  bash arg: com.tencent.mm\nEvents injected: 1\n## Network stats: elapsed time=12ms (0ms mobile, 0ms wifi, 12ms not connected)\n",
                )
            } else {
                CmdOutput::err("** No activities found to run, monkey aborted.\n", 251)
            }
        }
        "dumpsys" => dumpsys(device, &args),
        "getprop" => {
            let props = device.props_snapshot();
            match args.first() {
                Some(k) => {
                    CmdOutput::ok(format!("{}\n", props.get(*k).cloned().unwrap_or_default()))
                }
                None => CmdOutput::ok(
                    props
                        .iter()
                        .map(|(k, v)| format!("[{k}]: [{v}]\n"))
                        .collect::<String>(),
                ),
            }
        }
        "settings" => settings(device, &args),
        "wm" => match args.first() {
            Some(&"size") => CmdOutput::ok("Physical size: 720x1608\n"),
            Some(&"density") => CmdOutput::ok("Physical density: 320\n"),
            _ => CmdOutput::err("Error: unknown command\n", 255),
        },
        "cat" => {
            if args.is_empty() {
                CmdOutput::ok(stdin.unwrap_or_default())
            } else {
                let mut out = CmdOutput::default();
                for p in &args {
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
        "rm" => {
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
        "ls" => {
            let long = args.iter().any(|a| a.starts_with('-') && a.contains('l'));
            let path = args
                .iter()
                .find(|a| !a.starts_with('-'))
                .copied()
                .unwrap_or("/");
            match device.fs_stat(path) {
                None => CmdOutput::err(format!("ls: {path}: No such file or directory\n"), 1),
                Some(st) if st.mode & crate::fs::S_IFDIR == 0 => CmdOutput::ok(format!("{path}\n")),
                Some(_) => {
                    let entries = device.fs_list(path);
                    let mut s = String::new();
                    for (n, st) in entries.iter().filter(|(n, _)| n != "." && n != "..") {
                        if long {
                            let kind = if st.mode & crate::fs::S_IFDIR != 0 {
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
        "pm" => match args.first() {
            Some(&"list") if args.get(1) == Some(&"packages") => {
                let filter = args
                    .iter()
                    .skip(2)
                    .find(|a| !a.starts_with('-'))
                    .copied()
                    .unwrap_or("");
                let pkgs = [
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
                CmdOutput::ok(
                    pkgs.iter()
                        .filter(|p| p.contains(filter))
                        .map(|p| format!("package:{p}\n"))
                        .collect::<String>(),
                )
            }
            Some(&"path") if args.get(1) == Some(&"com.tencent.mm") => CmdOutput::ok(
                "package:/data/app/~~Qm8cVnZ2kX1_2rPa==/com.tencent.mm-Jx1n4q==/base.apk\n",
            ),
            _ => CmdOutput::err("Error: unknown pm command\n", 255),
        },
        "ime" => ime(device, &args),
        "grep" => match grep_filter(&argv[1..]) {
            Some(f) => {
                let text = text_of(&stdin);
                let lines: String = text
                    .lines()
                    .filter(|l| f.matches(l))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let code = if lines.is_empty() { 1 } else { 0 };
                CmdOutput {
                    stdout: lines.into_bytes(),
                    stderr: Vec::new(),
                    code,
                }
            }
            None => CmdOutput::err(
                "usage: grep [-EFHIabcdhilnoqrsvwxz] [-ABCm NUM] [-f FILE] [-e REGEX]... [REGEX] [FILE...]\n",
                2,
            ),
        },
        "head" | "tail" => {
            let n = args
                .iter()
                .enumerate()
                .find_map(|(i, a)| {
                    if *a == "-n" {
                        args.get(i + 1).and_then(|v| v.parse().ok())
                    } else {
                        a.strip_prefix('-').and_then(|v| v.parse().ok())
                    }
                })
                .unwrap_or(10usize);
            let text = text_of(&stdin);
            let lines: Vec<&str> = text.lines().collect();
            let pick: Vec<&str> = if name == "head" {
                lines.iter().take(n).copied().collect()
            } else {
                lines
                    .iter()
                    .skip(lines.len().saturating_sub(n))
                    .copied()
                    .collect()
            };
            CmdOutput::ok(pick.iter().map(|l| format!("{l}\n")).collect::<String>())
        }
        "wc" => CmdOutput::ok(format!("{}\n", text_of(&stdin).lines().count())),
        "id" => CmdOutput::ok(
            "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid) context=u:r:shell:s0\n",
        ),
        "whoami" => CmdOutput::ok("shell\n"),
        "date" => {
            let now = device.read(|st| st.clock.now());
            if args.first() == Some(&"+%s") {
                CmdOutput::ok(format!("{now}\n"))
            } else {
                let c = device.read(|st| st.clock.civil(now));
                CmdOutput::ok(format!(
                    "{} {} {:>2} {:02}:{:02}:{:02} CST {}\n",
                    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][c.weekday as usize],
                    [
                        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                        "Nov", "Dec"
                    ][(c.month as usize).saturating_sub(1) % 12],
                    c.day,
                    c.hour,
                    c.minute,
                    c.second,
                    c.year
                ))
            }
        }
        _ => not_found(&argv[0]),
    };
    (out, None)
}

fn echo(args: &[&str]) -> CmdOutput {
    let mut newline = true;
    let mut words = args;
    if words.first() == Some(&"-n") {
        newline = false;
        words = &words[1..];
    }
    let mut s = words.join(" ");
    if newline {
        s.push('\n');
    }
    CmdOutput::ok(s)
}

async fn uiautomator(device: &Device, args: &[&str]) -> CmdOutput {
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

async fn screencap(device: &Device, args: &[&str]) -> CmdOutput {
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

pub fn keycode(name: &str) -> Option<u32> {
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

async fn input(device: &Device, args: &[&str]) -> CmdOutput {
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

struct Intent<'a> {
    action: Option<&'a str>,
    component: Option<&'a str>,
    package: Option<&'a str>,
    categories: Vec<&'a str>,
    extras: Vec<(&'a str, &'a str)>,
}

fn parse_intent<'a>(args: &[&'a str]) -> Intent<'a> {
    let mut it = Intent {
        action: None,
        component: None,
        package: None,
        categories: Vec::new(),
        extras: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let next = args.get(i + 1).copied();
        match args[i] {
            "-a" => it.action = next,
            "-n" => it.component = next,
            "-p" => it.package = next,
            "-c" => it.categories.extend(next),
            "--user" | "-f" | "-d" | "-t" => {}
            "-e" | "--es" | "--ei" | "--ez" | "--el" | "--eu" => {
                if let (Some(k), Some(v)) = (next, args.get(i + 2)) {
                    it.extras.push((k, v));
                }
                i += 3;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    it
}

fn intent_desc(it: &Intent<'_>) -> String {
    let mut s = String::from("Intent {");
    if let Some(a) = it.action {
        s.push_str(&format!(" act={a}"));
    }
    if !it.categories.is_empty() {
        s.push_str(&format!(" cat=[{}]", it.categories.join(",")));
    }
    s.push_str(" flg=0x400000");
    if let Some(p) = it.package {
        s.push_str(&format!(" pkg={p}"));
    }
    if let Some(c) = it.component {
        s.push_str(&format!(" cmp={c}"));
    }
    if !it.extras.is_empty() {
        s.push_str(" (has extras)");
    }
    s.push_str(" }");
    s
}

async fn am(device: &Device, args: &[&str]) -> CmdOutput {
    let Some(sub) = args.first() else {
        return CmdOutput::err("usage: am [subcommand] [options]\n", 255);
    };
    let intent = parse_intent(&args[1..]);
    match *sub {
        "broadcast" => {
            let head = format!("Broadcasting: {}\n", intent_desc(&intent));
            let extra = |k: &str| {
                intent
                    .extras
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| *v)
            };
            let adb_ime_active = device.read(|st| st.ime == ADB_IME);
            let result = match intent.action.unwrap_or("") {
                "ADB_INPUT_B64" | "ADB_INPUT_TEXT" | "ADB_CLEAR_TEXT" | "ADB_INPUT_CODE" => {
                    delay(device.latency().input_ms).await;
                    if !adb_ime_active {
                        // The keyboard's receiver only exists while it is the active IME.
                        device.with(|st| {
                            st.wechat.log(
                                "text_dropped",
                                None,
                                "ADB keyboard is not the active IME",
                            )
                        });
                    } else {
                        match intent.action.unwrap_or("") {
                            "ADB_INPUT_B64" => {
                                let text = extra("msg")
                                    .and_then(|m| {
                                        base64::engine::general_purpose::STANDARD.decode(m).ok()
                                    })
                                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                                if let Some(t) = text {
                                    device.ime_text(&t, "adb_keyboard");
                                }
                            }
                            "ADB_INPUT_TEXT" => {
                                if let Some(t) = extra("msg") {
                                    device.ime_text(t, "adb_keyboard");
                                }
                            }
                            "ADB_CLEAR_TEXT" => device.with(|st| {
                                if let Screen::Chat(n) = st.wechat.screen.clone()
                                    && st.wechat.input_focused
                                {
                                    st.wechat.set_draft(&n, "");
                                }
                            }),
                            _ => {
                                if let Some(code) = extra("code").and_then(|c| c.parse().ok()) {
                                    device.key(code);
                                }
                            }
                        }
                    }
                    "Broadcast completed: result=0\n".to_string()
                }
                "clipper.set" => {
                    let text = extra("text").unwrap_or("").to_string();
                    device.with(|st| st.wechat.clipboard = text);
                    "Broadcast completed: result=-1, data=\"Text is copied into clipboard.\"\n"
                        .to_string()
                }
                "clipper.get" => {
                    let clip = device.read(|st| st.wechat.clipboard.clone());
                    format!("Broadcast completed: result=-1, data=\"{clip}\"\n")
                }
                _ => "Broadcast completed: result=0\n".to_string(),
            };
            CmdOutput::ok(format!("{head}{result}"))
        }
        "start" | "start-activity" => {
            let targets_wechat = intent
                .component
                .is_some_and(|c| c.starts_with("com.tencent.mm/"))
                || intent.package == Some("com.tencent.mm");
            if !targets_wechat {
                return CmdOutput::err(
                    format!(
                        "Starting: {}\nError: Activity not started, unable to resolve Intent\n",
                        intent_desc(&intent)
                    ),
                    1,
                );
            }
            let was_front = device.read(|st| st.wechat.foreground);
            device.with(|st| st.wechat.bring_to_front());
            let mut s = format!(
                "Starting: {}\n",
                intent_desc(&intent).replace(" flg=0x400000", "")
            );
            if was_front {
                s.push_str("Warning: Activity not started, intent has been delivered to currently running top-most instance.\n");
            }
            CmdOutput::ok(s)
        }
        "force-stop" => {
            if args.get(1) == Some(&"com.tencent.mm") {
                device.with(|st| {
                    let w = &mut st.wechat;
                    w.foreground = false;
                    w.screen = Screen::List;
                    w.popup = None;
                    w.input_focused = false;
                });
            }
            CmdOutput::default()
        }
        _ => CmdOutput::err(format!("Error: Unknown command: {sub}\n"), 255),
    }
}

fn dumpsys(device: &Device, args: &[&str]) -> CmdOutput {
    match args.first().copied() {
        Some("window") => {
            let (focus, app, popup) = device.read(|st| {
                let (f, a) = focus_component(&st.wechat);
                (f, a, st.wechat.popup.is_some())
            });
            let mut s = String::from("WINDOW MANAGER WINDOWS (dumpsys window windows)\n");
            s.push_str("  Window #0 Window{3f1a2b4 u0 StatusBar}:\n    mDisplayId=0 rootTaskId=1 mSession=Session{8c2d1e0 1892:u0a10104} mClient=android.os.BinderProxy@5e7f9a1\n");
            s.push_str(&format!("  Window #1 Window{{9b8c7d6 u0 {focus}}}:\n    mDisplayId=0 rootTaskId=214 mSession=Session{{1a2b3c4 {WECHAT_PID}:u0a245}} mClient=android.os.BinderProxy@2d3e4f5\n"));
            if popup {
                s.push_str(&format!("  Window #2 Window{{4c5d6e7 u0 {focus}}}:\n    mDisplayId=0 rootTaskId=214 mAttrs={{(0,0)(wrapxwrap) gr=CENTER sim={{adjust=pan}} ty=APPLICATION fmt=TRANSLUCENT}}\n"));
            }
            s.push('\n');
            s.push_str(&format!("  mGlobalConfiguration={{1.0 460mcc1mnc [zh_CN] ldltr sw360dp w360dp h804dp 320dpi nrml long port finger -keyb/v/h -nav/h winConfig={{ mBounds=Rect(0, 0 - 720, 1608) mAppBounds=Rect(0, 0 - 720, 1608) mMaxBounds=Rect(0, 0 - 720, 1608) mDisplayRotation=ROTATION_0 mWindowingMode=fullscreen mActivityType=undefined mAlwaysOnTop=undefined mRotation=ROTATION_0}} s.2}}\n  mHasPermanentDpad=false\n  mTopFocusedDisplayId=0\n  mCurrentFocus=Window{{9b8c7d6 u0 {focus}}}\n  mFocusedApp=ActivityRecord{{6e5d4c3 u0 {app} t214}}\n"));
            CmdOutput::ok(s)
        }
        Some("package") => {
            if args.get(1) != Some(&"com.tencent.mm") {
                return CmdOutput::ok(format!(
                    "Unable to find package: {}\n",
                    args.get(1).unwrap_or(&"")
                ));
            }
            let v = &device.config().wechat_version;
            let parts = crate::wechat::version_parts(v);
            let code = 2000 + parts.get(2).copied().unwrap_or(0) * 20 + 40;
            CmdOutput::ok(format!(
                "Activity Resolver Table:\n  Non-Data Actions:\n      android.intent.action.MAIN:\n        5a6b7c8 com.tencent.mm/.ui.LauncherUI filter 9d0e1f2\n\nPackages:\n  Package [com.tencent.mm] (c3d4e5f):\n    userId={WECHAT_UID}\n    pkg=Package{{a1b2c3d com.tencent.mm}}\n    codePath=/data/app/~~Qm8cVnZ2kX1_2rPa==/com.tencent.mm-Jx1n4q==\n    resourcePath=/data/app/~~Qm8cVnZ2kX1_2rPa==/com.tencent.mm-Jx1n4q==\n    primaryCpuAbi=arm64-v8a\n    secondaryCpuAbi=null\n    versionCode={code} minSdk=23 targetSdk=34\n    minExtensionVersion=[]\n    versionName={v}\n    usesNonSdkApi=true\n    splits=[base]\n    apkSigningVersion=2\n    flags=[ HAS_CODE ALLOW_CLEAR_USER_DATA LARGE_HEAP ]\n    timeStamp=2026-01-05 21:14:03\n    lastUpdateTime=2026-01-05 21:14:33\n    installerPackageName=com.bbk.appstore\n"
            ))
        }
        Some("notification") => {
            CmdOutput::ok(dump_notifications(device, args.contains(&"--noredact")))
        }
        Some("gfxinfo") => {
            let (frames, now) = device.read(|st| (st.frames, st.clock.now_millis()));
            CmdOutput::ok(format!(
                "Applications Graphics Acceleration Info:\nUptime: {now} Realtime: {now}\n\n** Graphics info for pid {WECHAT_PID} [com.tencent.mm] **\n\nStats since: 81234567890ns\nTotal frames rendered: {frames}\nJanky frames: {} ({:.2}%)\n50th percentile: 9ms\n90th percentile: 17ms\n95th percentile: 23ms\n99th percentile: 48ms\nNumber Missed Vsync: 3\nNumber High input latency: 12\nNumber Slow UI thread: 9\nNumber Slow bitmap uploads: 0\nNumber Slow issue draw commands: 4\nNumber Frame deadline missed: 11\n",
                frames / 20,
                5.0
            ))
        }
        Some("activity") => {
            let app = device.read(|st| focus_component(&st.wechat).1);
            CmdOutput::ok(format!(
                "ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n  mResumedActivity: ActivityRecord{{6e5d4c3 u0 {app} t214}}\n  ResumedActivity: ActivityRecord{{6e5d4c3 u0 {app} t214}}\n"
            ))
        }
        Some(other) => CmdOutput::ok(format!("Can't find service: {other}\n")),
        None => CmdOutput::ok(
            "Currently running services:\n  activity\n  gfxinfo\n  notification\n  package\n  window\n",
        ),
    }
}

/// Close to Android 13's NotificationManagerService dump: one NotificationRecord per posted
/// notification, with its extras. Without `--noredact` the text is redacted to its length.
fn dump_notifications(device: &Device, noredact: bool) -> String {
    let notes = device.read(|st| st.wechat.notifications.clone());
    let mut s = String::from("Current Notification Manager state:\n  Notification List:\n");
    for n in &notes {
        let key = format!("0|com.tencent.mm|{}|null|{WECHAT_UID}", n.id);
        let shown = |t: &str| {
            if noredact {
                t.to_string()
            } else {
                format!("[{}]", t.chars().count())
            }
        };
        s.push_str(&format!(
            "    NotificationRecord(0x{:08x}: pkg=com.tencent.mm user=UserHandle{{0}} id={} tag=null importance=4 key={key}: Notification(channel=message_channel_new_id shortcut=null contentView=null vibrate=null sound=null defaults=0x0 flags=0x10 color=0x00000000 category=msg vis=PRIVATE))\n",
            0x0a1b_0000u32 + n.id,
            n.id
        ));
        s.push_str(&format!("      uid={WECHAT_UID} userId=0\n      opPkg=com.tencent.mm\n      icon=Icon(typ=RESOURCE pkg=com.tencent.mm id=0x7f080b5e)\n      flags=AUTO_CANCEL\n      pri=2\n      key={key}\n      seen=false\n      groupKey={key}\n"));
        s.push_str(&format!("      notification=\n        fullscreenIntent=null\n        contentIntent=PendingIntent{{4d5e6f7: android.os.BinderProxy@8a9b0c1}}\n        deleteIntent=null\n        number={}\n        groupAlertBehavior=0\n        when={}\n", n.count, n.when_ms));
        s.push_str(&format!(
            "        tickerText={}\n",
            shown(&format!("{}: {}", n.title, n.text))
        ));
        s.push_str("        contentView=null\n        bigContentView=null\n        headsUpContentView=null\n        color=0x00000000\n        publicVersion=null\n        extras={\n");
        s.push_str(&format!(
            "          android.title=String ({})\n",
            shown(&n.title)
        ));
        s.push_str("          android.reduced.images=Boolean (true)\n          android.subText=null\n          android.template=String (android.app.Notification$BigTextStyle)\n          android.showChronometer=Boolean (false)\n");
        s.push_str(&format!(
            "          android.text=String ({})\n",
            shown(&n.text)
        ));
        s.push_str("          android.progress=Integer (0)\n          android.progressMax=Integer (0)\n          android.showWhen=Boolean (true)\n");
        s.push_str(&format!(
            "          android.bigText=String ({})\n",
            shown(&n.text)
        ));
        s.push_str("          android.infoText=null\n          android.progressIndeterminate=Boolean (false)\n          android.remoteInputHistory=null\n        }\n");
        s.push_str(&format!("      stats=SingleNotificationStats{{posttimeElapsedMs=0, posttimeToFirstClickMs=-1, posttimeToDismissMs=-1, airtimeCount=1, posttimeToFirstAirtimeMs=0, currentAirtimeStartElapsedMs=0, currentAirtimeMs=0, posttimeToFirstVisibleExpansionMs=-1, currentExpandedAirtimeStartElapsedMs=-1, currentExpandedAirtimeMs=0, userExpansionCount=0, onClickCount=0}}\n      mContactAffinity=0.0\n      mRecentlyIntrusive=false\n      mPackagePriority=0\n      mPackageVisibility=-1000\n      mSystemImportance=4\n      mAsst Importance=-1000\n      mImportanceExpl=app\n      mIntercept=false\n      mHidden==false\n      mGlobalSortKey=crank=0|intrsv=true|cat=msg|gsum=false|aff=0.0|user=0|pkg=com.tencent.mm|gkey={key}\n      mRankingTimeMs={}\n      mCreationTimeMs={}\n      mVisibleSinceMs=0\n      mUpdateTimeMs={}\n      mInterruptionTimeMs={}\n      mSuppressedVisualEffects= 0\n", n.when_ms, n.when_ms, n.when_ms, n.when_ms));
    }
    s.push_str("  \n  Snoozed notifications:\n\n  Pending snoozed notifications\n");
    s
}

fn logcat(device: &Device, args: &[&str]) -> (CmdOutput, Option<Follow>) {
    let mut dump_only = false;
    let mut clear = false;
    let mut buffers = Vec::new();
    let mut tail: Option<usize> = None;
    let mut since_ms: Option<i64> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-d" => dump_only = true,
            "-c" => clear = true,
            "-b" => {
                buffers.extend(args.get(i + 1).copied());
                i += 1;
            }
            "-t" | "-T" => {
                if let Some(v) = args.get(i + 1) {
                    if let Ok(n) = v.parse::<usize>() {
                        tail = Some(n);
                    } else {
                        since_ms = parse_logcat_time(device, v);
                    }
                }
                // `-t` prints and exits, `-T` then keeps following.
                if args[i] == "-t" {
                    dump_only = true;
                }
                i += 1;
            }
            "-v" | "-s" | "-e" | "--pid" | "-m" | "--regex" => i += 1,
            _ => {}
        }
        i += 1;
    }
    if clear {
        device.with(|st| st.event_log.clear());
        return (CmdOutput::default(), None);
    }
    let events = buffers.is_empty()
        || buffers
            .iter()
            .any(|b| b.split(',').any(|x| x == "events" || x == "all"));
    // Subscribe before reading the buffer so no line falls between the two.
    let rx = device.subscribe_events();
    let mut lines: Vec<String> = if events {
        device.read(|st| {
            st.event_log
                .iter()
                .filter(|(t, _)| since_ms.is_none_or(|s| *t >= s))
                .map(|(_, l)| l.clone())
                .collect()
        })
    } else {
        Vec::new()
    };
    if let Some(n) = tail {
        lines = lines.split_off(lines.len().saturating_sub(n));
    }
    let mut head = String::from("--------- beginning of events\n");
    if !events {
        head = format!(
            "--------- beginning of {}\n",
            buffers.first().copied().unwrap_or("main")
        );
    }
    let out = CmdOutput::ok(format!("{head}{}", lines.concat()));
    if dump_only {
        return (out, None);
    }
    let rx = if events { rx } else { broadcast::channel(1).1 };
    (
        out,
        Some(Follow {
            rx,
            filters: Vec::new(),
        }),
    )
}

/// `MM-DD HH:MM:SS.mmm` in the phone's current year, or epoch seconds `N.mmm`.
fn parse_logcat_time(device: &Device, v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return Some((secs * 1000.0) as i64);
    }
    let (date, time) = v.trim().split_once(' ')?;
    let (mo, d) = date.split_once('-')?;
    let mut hms = time.split([':', '.']);
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next()?.parse().ok()?;
    let ms: i64 = hms.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let (mo, d): (u32, u32) = (mo.parse().ok()?, d.parse().ok()?);
    device.read(|st| {
        let now = st.clock.now();
        let c = st.clock.civil(now);
        // Walk back from today to the named day; logcat times never lie in the future by much.
        let mut day_start =
            now - i64::from(c.hour) * 3600 - i64::from(c.minute) * 60 - i64::from(c.second);
        for _ in 0..400 {
            let cc = st.clock.civil(day_start);
            if cc.month == mo && cc.day == d {
                return Some((day_start + h * 3600 + mi * 60 + s) * 1000 + ms);
            }
            day_start -= 86_400;
        }
        None
    })
}

fn settings(device: &Device, args: &[&str]) -> CmdOutput {
    let (Some(op), Some(ns)) = (args.first(), args.get(1)) else {
        return CmdOutput::err(
            "usage:  settings [--user <USER_ID> | current] get namespace key\n",
            255,
        );
    };
    match *op {
        "get" => {
            let key = format!("{ns}/{}", args.get(2).unwrap_or(&""));
            CmdOutput::ok(format!(
                "{}\n",
                device
                    .read(|st| st.settings.get(&key).cloned())
                    .unwrap_or_else(|| "null".into())
            ))
        }
        "put" => {
            let (Some(k), Some(v)) = (args.get(2), args.get(3)) else {
                return CmdOutput::err("settings: missing value\n", 255);
            };
            let key = format!("{ns}/{k}");
            device.with(|st| {
                if key == "secure/default_input_method" {
                    st.ime = v.to_string();
                }
                st.settings.insert(key, v.to_string());
            });
            CmdOutput::default()
        }
        "list" => {
            let prefix = format!("{ns}/");
            CmdOutput::ok(device.read(|st| {
                st.settings
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| format!("{k}={v}\n")))
                    .collect::<String>()
            }))
        }
        _ => CmdOutput::err(format!("Invalid command: {op}\n"), 255),
    }
}

fn ime(device: &Device, args: &[&str]) -> CmdOutput {
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
            device.with(|st| {
                st.ime = id.to_string();
                st.settings
                    .insert("secure/default_input_method".into(), id.to_string());
            });
            CmdOutput::ok(format!("Input method {id} selected for user #0\n"))
        }
        Some("enable") => CmdOutput::ok(format!(
            "Input method {}: already enabled for user #0\n",
            args.get(1).unwrap_or(&"")
        )),
        _ => CmdOutput::err("Error: unknown ime command\n", 255),
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

    #[test]
    fn grep_options() {
        let f = grep_filter(&["-iE".to_string(), "focus|app".to_string()]).expect("filter");
        assert!(f.matches("mCurrentFocus=x"));
        assert!(f.matches("mFocusedApp=y"));
        assert!(!f.matches("other"));
        let v = grep_filter(&["-v".to_string(), "x".to_string()]).expect("filter");
        assert!(v.matches("abc") && !v.matches("xyz"));
    }

    #[test]
    fn intents() {
        let it = parse_intent(&[
            "-a",
            "ADB_INPUT_B64",
            "-p",
            "com.android.adbkeyboard",
            "--es",
            "msg",
            "5L2g5aW9",
        ]);
        assert_eq!(
            intent_desc(&it),
            "Intent { act=ADB_INPUT_B64 flg=0x400000 pkg=com.android.adbkeyboard (has extras) }"
        );
        assert_eq!(it.extras, vec![("msg", "5L2g5aW9")]);
    }
}
