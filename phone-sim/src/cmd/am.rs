//! `am` (start, force-stop, and broadcasts to the ADB keyboard and the clipboard app) and
//! `monkey -p`, the other way scripts launch an app.

use base64::Engine as _;

use super::{CmdOutput, delay};
use crate::device::{ADB_IME, Device};
use crate::wechat::model::Screen;

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

pub(super) async fn run(device: &Device, args: &[&str]) -> CmdOutput {
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

/// `monkey -p com.tencent.mm …` brings WeChat to the front; any other package has no launcher
/// activity on this phone.
pub(super) fn monkey(device: &Device, args: &[&str]) -> CmdOutput {
    if args.contains(&"com.tencent.mm") {
        device.with(|st| st.wechat.bring_to_front());
        CmdOutput::ok(
            "  bash arg: -p\n  bash arg: com.tencent.mm\nEvents injected: 1\n## Network stats: elapsed time=12ms (0ms mobile, 0ms wifi, 12ms not connected)\n",
        )
    } else {
        CmdOutput::err("** No activities found to run, monkey aborted.\n", 251)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
