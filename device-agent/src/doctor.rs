//! What a phone needs before `run` can drive it, checked one thing at a time, each with
//! the exact fix. Nothing here changes the phone: `doctor` only looks (`prepare` acts).

use serde::Serialize;

use crate::agent::parse_version_name;
use crate::dump::Dump;
use crate::prepare::{
    ANIMATION_SCALES, PrepareError, get_setting, installed_trusted_services, read_record,
    talkback_on,
};
use crate::screen::{TreeVisibility, tree_visibility};
use crate::transport::Transport;
use crate::uimap::{UiMaps, Version};

const ADB_KEYBOARD_PACKAGE: &str = "com.android.adbkeyboard";
const ADB_KEYBOARD_IME: &str = "com.android.adbkeyboard/.AdbIME";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Works, but worse than it could (a fallback, a slower path).
    Warn,
    /// `run` cannot drive this phone until it is fixed.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, when something is to be done.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check on one phone that answers shell commands. A check that cannot be
/// made because the phone went away ends the list with that failure.
pub fn check_phone(phone: &mut dyn Transport, maps: &UiMaps) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Err(error) = run_checks(phone, maps, &mut checks) {
        checks.push(Check::fail(
            "phone",
            format!("stopped answering: {error}"),
            "check the cable or the Wi-Fi connection, then run `tapwire doctor` again",
        ));
    }
    checks
}

fn run_checks(
    phone: &mut dyn Transport,
    maps: &UiMaps,
    checks: &mut Vec<Check>,
) -> Result<(), PrepareError> {
    checks.push(screen_check(phone)?);
    let package = phone.shell("dumpsys package com.tencent.mm")?.stdout_text();
    let Some(version) = parse_version_name(&package) else {
        checks.push(Check::fail(
            "wechat",
            "not installed",
            "install WeChat on the phone and log in",
        ));
        return Ok(());
    };
    checks.push(Check::ok("wechat", format!("version {version}")));
    checks.push(map_check(maps, &version));
    checks.push(tree_check(phone)?);
    checks.push(keyboard_check(phone)?);
    checks.push(animation_check(phone)?);
    Ok(())
}

fn screen_check(phone: &mut dyn Transport) -> Result<Check, PrepareError> {
    let out = phone
        .shell("dumpsys power | grep mWakefulness=; dumpsys window | grep -E 'mCurrentFocus|mDreamingLockscreen|isKeyguardShowing|mShowingLockscreen'")?
        .stdout_text();
    Ok(screen_state(&out))
}

/// Reads what `dumpsys power` and `dumpsys window` say about the screen and its lock.
fn screen_state(out: &str) -> Check {
    const NAME: &str = "screen";
    let wake = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("mWakefulness="))
        .map(str::trim);
    let locked = out.contains("mDreamingLockscreen=true")
        || out.contains("isKeyguardShowing=true")
        || out.contains("mShowingLockscreen=true")
        || out.lines().any(|l| {
            l.contains("mCurrentFocus")
                && (l.contains("NotificationShade") || l.contains("Keyguard"))
        });
    match wake {
        Some("Awake") if locked => Check::fail(
            NAME,
            "on, but locked",
            "unlock the phone (and set its screen lock to none or keep it awake while charging: Developer options → Stay awake)",
        ),
        Some("Awake") => Check::ok(NAME, "on and unlocked"),
        Some(other) => Check::fail(
            NAME,
            format!("off ({other})"),
            "wake and unlock the phone; Developer options → Stay awake keeps it on while it charges",
        ),
        None => Check::warn(
            NAME,
            "the phone does not say whether its screen is on",
            "make sure the screen is on and unlocked",
        ),
    }
}

fn map_check(maps: &UiMaps, version: &str) -> Check {
    const NAME: &str = "ui map";
    let draft = format!(
        "capture the conversation list and a chat with `tapwire dump --out dumps`, then `tapwire map draft --from dumps --out ui-maps/wechat-{version}.toml`"
    );
    match Version::parse(version) {
        Ok(parsed) => match maps.for_version(&parsed) {
            Ok(map) => Check::ok(
                NAME,
                format!(
                    "{} ({})",
                    map.name,
                    map.source.file_name().map_or_else(
                        || map.source.display().to_string(),
                        |f| f.to_string_lossy().into_owned()
                    )
                ),
            ),
            Err(_) => Check::fail(NAME, format!("none for WeChat {version}"), draft),
        },
        Err(_) => Check::fail(
            NAME,
            format!("WeChat's version `{version}` is not a version number"),
            draft,
        ),
    }
}

fn tree_check(phone: &mut dyn Transport) -> Result<Check, PrepareError> {
    const NAME: &str = "ui tree";
    if talkback_on(phone)? {
        return Ok(Check::fail(
            NAME,
            "TalkBack is on: a tap only moves its focus, so Tapwire will not tap",
            "turn TalkBack off (Settings → Accessibility → TalkBack), then `tapwire phone prepare`",
        ));
    }
    let raw = phone.shell("uiautomator dump /dev/tty")?.stdout_text();
    let visibility = match Dump::parse(&raw) {
        Ok(dump) => tree_visibility(&dump, "com.tencent.mm"),
        Err(error) => {
            return Ok(Check::warn(
                NAME,
                format!("the screen could not be dumped: {error}"),
                "run `tapwire doctor` again once the screen is still",
            ));
        }
    };
    let prepared = !read_record(phone)?.changes.is_empty();
    Ok(match visibility {
        TreeVisibility::Visible if prepared => Check::ok(
            NAME,
            "visible (Tapwire turned a trusted accessibility service on; `tapwire phone restore` undoes it)",
        ),
        TreeVisibility::Visible => Check::ok(NAME, "visible"),
        TreeVisibility::NoWechat => Check::warn(
            NAME,
            "WeChat is not on the screen, so its tree cannot be checked",
            "open WeChat on the phone (`run` starts it itself)",
        ),
        TreeVisibility::Hidden => match installed_trusted_services(phone)?.first() {
            Some(service) => Check::warn(
                NAME,
                format!(
                    "hidden by WeChat; restorable with {} (installed)",
                    service.label
                ),
                "`tapwire phone prepare` (or `run`, which does it first) turns it on",
            ),
            None => Check::fail(
                NAME,
                "hidden by WeChat, and no accessibility service WeChat trusts is installed",
                "install Android Accessibility Suite (Select to Speak) or 点明 on the phone; vision mode (screenshots) is the alternative",
            ),
        },
    })
}

fn keyboard_check(phone: &mut dyn Transport) -> Result<Check, PrepareError> {
    const NAME: &str = "keyboard";
    let listed = phone
        .shell(&format!("pm list packages {ADB_KEYBOARD_PACKAGE}"))?
        .stdout_text();
    let installed = listed
        .lines()
        .any(|l| l.trim() == format!("package:{ADB_KEYBOARD_PACKAGE}"));
    let selected = get_setting(phone, "secure", "default_input_method")?;
    Ok(
        match (installed, selected.as_deref() == Some(ADB_KEYBOARD_IME)) {
            (true, true) => Check::ok(NAME, "ADB keyboard installed and selected"),
            (true, false) => Check::warn(
                NAME,
                format!(
                    "ADB keyboard installed, but `{}` is selected: replies go through the clipboard",
                    selected.as_deref().unwrap_or("none")
                ),
                format!(
                    "adb shell ime enable {ADB_KEYBOARD_IME} && adb shell ime set {ADB_KEYBOARD_IME}"
                ),
            ),
            (false, _) => Check::warn(
                NAME,
                "ADB keyboard not installed: replies go through the clipboard (slower)",
                "install ADBKeyBoard.apk (github.com/senzhk/ADBKeyBoard) with `adb install`, then `adb shell ime set com.android.adbkeyboard/.AdbIME`",
            ),
        },
    )
}

fn animation_check(phone: &mut dyn Transport) -> Result<Check, PrepareError> {
    const NAME: &str = "animations";
    let mut on = Vec::new();
    for key in ANIMATION_SCALES {
        let value = get_setting(phone, "global", key)?;
        if value.as_deref().and_then(|v| v.parse::<f32>().ok()) != Some(0.0) {
            on.push(format!("{key}={}", value.as_deref().unwrap_or("default")));
        }
    }
    Ok(if on.is_empty() {
        Check::ok(NAME, "off")
    } else {
        Check::warn(
            NAME,
            format!("on ({})", on.join(", ")),
            "`tapwire phone prepare` turns them off (dumps taken mid-animation fail)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_awake_unlocked_phone_is_ok() {
        let out = "  mWakefulness=Awake\n  mCurrentFocus=Window{1 u0 com.tencent.mm/com.tencent.mm.ui.LauncherUI}\n";
        assert_eq!(screen_state(out).status, Status::Ok);
    }

    #[test]
    fn a_lock_screen_is_named() {
        let shade = "  mWakefulness=Awake\n  mCurrentFocus=Window{2 u0 NotificationShade}\n";
        let check = screen_state(shade);
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("locked"));
        let dream = "  mWakefulness=Awake\n    mShowingDream=false mDreamingLockscreen=true\n";
        assert_eq!(screen_state(dream).status, Status::Fail);
    }

    #[test]
    fn a_sleeping_phone_fails_and_silence_warns() {
        assert_eq!(screen_state("  mWakefulness=Asleep\n").status, Status::Fail);
        assert_eq!(screen_state("").status, Status::Warn);
    }
}
