//! The phone's shell: runs the command lines adb clients send and prints what Android prints.
//!
//! This file parses a line ([`parse`]), runs its pipelines (`|`, `&&`, `||`, `;`, `$?`,
//! `>`/`>>`/`2>`/`2>&1` redirections, `sh -c`, `exec`) and hands each simple command to the
//! file of its family:
//!
//! - [`parse`]: splits a line into pipelines of simple commands, as `sh` would.
//! - `uiautomator`: `uiautomator dump`, with the failures real phones show mid-transition.
//! - `screencap`: PNG and raw screenshots.
//! - `input`: `tap`, `swipe`, `keyevent`, `text`; key names to codes.
//! - `am`: `am start`/`force-stop`/`broadcast` (ADB keyboard, clipboard) and `monkey`.
//! - `dumpsys`: `window`, `package`, `notification`, `gfxinfo`, `activity`, `accessibility`.
//! - `logcat`: the `events` buffer, dumped or followed.
//! - `settings`: `settings get`/`put`/`delete`/`list`, with `--user`.
//! - `ime`: `ime list`/`set`/`enable`.
//! - `pm`: `pm list packages` (with its filters and flags), `pm path`.
//! - `text`: `echo`, `grep` (also the filter on a followed `logcat`), `head`, `tail`, `wc`.
//! - `files`: `cat`, `ls`, `rm`.
//! - `system`: `getprop`, `wm`, `id`, `whoami`, `date`.
//! - `builtins`: `true`, `false`, `exit`, `sleep`, `export` and the other no-op builtins.

mod am;
mod builtins;
mod dumpsys;
mod files;
mod ime;
mod input;
mod logcat;
pub mod parse;
mod pm;
mod screencap;
mod settings;
mod system;
mod text;
mod uiautomator;

use std::time::Duration;

use tokio::sync::broadcast;

use crate::device::Device;
use parse::{Connector, LAST_STATUS, Redirect, Simple};
use text::LineFilter;

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
    /// Android's shell commands print some failures on stdout and still fail.
    fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }
}

/// A command that keeps printing (`logcat` without `-d`) until the host closes the stream.
pub struct Follow {
    pub rx: broadcast::Receiver<String>,
    filters: Vec<LineFilter>,
}

impl Follow {
    fn new(rx: broadcast::Receiver<String>) -> Self {
        Follow {
            rx,
            filters: Vec::new(),
        }
    }

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
                && let Some(filter) = LineFilter::from_grep_args(&cmd.argv[1..])
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

/// Waits as long as the phone takes for an operation (see [`crate::device::Latency`]).
async fn delay(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
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
        "logcat" => return logcat::run(device, &args),
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
        "export" | "unset" | "set" | "cd" | ":" | "true" => builtins::succeed(),
        "false" => builtins::fail(),
        "exit" => builtins::exit(&args),
        "sleep" => builtins::sleep(&args).await,
        "echo" => text::echo(&args),
        "grep" => text::grep(&argv[1..], &stdin),
        "head" | "tail" => text::head_or_tail(&name, &args, &stdin),
        "wc" => text::wc(&stdin),
        "cat" => files::cat(device, &args, stdin),
        "ls" => files::ls(device, &args),
        "rm" => files::rm(device, &args),
        "uiautomator" => uiautomator::run(device, &args).await,
        "screencap" => screencap::run(device, &args).await,
        "input" => input::run(device, &args).await,
        "am" => am::run(device, &args).await,
        "monkey" => am::monkey(device, &args),
        "dumpsys" => dumpsys::run(device, &args),
        "settings" => settings::run(device, &args),
        "ime" => ime::run(device, &args),
        "pm" => pm::run(device, &args),
        "getprop" => system::getprop(device, &args),
        "wm" => system::wm(device, &args),
        "id" => system::id(),
        "whoami" => system::whoami(),
        "date" => system::date(device, &args),
        _ => not_found(&argv[0]),
    };
    (out, None)
}
