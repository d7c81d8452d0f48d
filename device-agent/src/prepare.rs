//! Bringing WeChat's hidden UI tree back on a phone, and putting the phone back as it was.
//!
//! From about 8.0.55 on, WeChat wipes its accessibility nodes (the dump is one empty node)
//! unless its own check finds accessibility in use: TalkBack's touch exploration, or
//! `Settings.Secure.enabled_accessibility_services` *containing* the class name of one of
//! two services it trusts (DESIGN.md §4, from decompiled 8.0.72/8.0.74 and tests on real
//! phones). So the tree comes back by appending an installed trusted service to that
//! setting and turning `accessibility_enabled` on. TalkBack is never the way: with touch
//! exploration a tap only moves focus, so a bot could read but never press anything.
//!
//! Every setting changed is recorded on the phone itself (`RECORD_PATH`), so that
//! `restore` works from any computer and a second `prepare` never forgets what the
//! user's value was before the first.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dump::Dump;
use crate::screen::{TreeVisibility, tree_visibility};
use crate::transport::{Transport, TransportError, shell_quote};

/// An accessibility service WeChat's check trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrustedService {
    /// What to install, in the words a user searches the app store with.
    pub label: &'static str,
    pub package: &'static str,
    /// The `package/class` entry of `enabled_accessibility_services`.
    pub component: &'static str,
}

/// WeChat's built-in list (`clicfg_acc_white_service_list` may replace it server-side),
/// in the order Tapwire prefers them: Google's suite is on most phones with Google
/// services; 点明 is the one a phone without them can install.
pub const TRUSTED_SERVICES: [TrustedService; 2] = [
    TrustedService {
        label: "Android Accessibility Suite → Select to Speak",
        package: "com.google.android.marvin.talkback",
        component: "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService",
    },
    TrustedService {
        label: "点明 (com.dianming.phoneapp)",
        package: "com.dianming.phoneapp",
        component: "com.dianming.phoneapp/com.dianming.phoneapp.MyAccessibilityService",
    },
];

/// TalkBack's class: it brings the tree back, but taps only move its focus.
const TALKBACK_CLASS: &str = "com.google.android.marvin.talkback.TalkBackService";

/// Off means no transition is half-drawn when the screen is dumped.
pub const ANIMATION_SCALES: [&str; 3] = [
    "window_animation_scale",
    "transition_animation_scale",
    "animator_duration_scale",
];

/// Where `prepare` keeps what it changed; `/data/local/tmp` is writable by adb's shell
/// user on every Android and survives reboots.
pub const RECORD_PATH: &str = "/data/local/tmp/tapwire-prepared.json";

const SERVICES_KEY: &str = "enabled_accessibility_services";
const WECHAT_LAUNCHER: &str = "com.tencent.mm/.ui.LauncherUI";

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("`{command}` failed on {device}: {output}")]
    Rejected {
        device: String,
        command: String,
        output: String,
    },
    #[error(
        "the record of what `prepare` changed on {device} ({RECORD_PATH}) is unreadable: {error}"
    )]
    BadRecord { device: String, error: String },
}

/// One setting as `prepare` found it and as it left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    pub namespace: String,
    pub key: String,
    /// None when the phone had no such setting (`settings get` printed `null`).
    pub before: Option<String>,
    pub after: String,
}

/// What is kept on the phone: the first value each setting had before Tapwire touched it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareRecord {
    pub changes: Vec<SettingChange>,
}

impl PrepareRecord {
    /// Adds `change`, unless the setting was changed before: then the value the user had
    /// stays the one to restore, and only what Tapwire now leaves there is updated.
    fn merge(&mut self, change: SettingChange) {
        match self
            .changes
            .iter_mut()
            .find(|c| c.namespace == change.namespace && c.key == change.key)
        {
            Some(earlier) => earlier.after = change.after,
            None => self.changes.push(change),
        }
    }
}

/// How `prepare` ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Prepared {
    /// WeChat's tree was visible already (an older build, or a trusted service was on).
    TreeVisible,
    /// The tree was hidden; turning `service` on brought it back, proven by a new dump.
    TreeRestored { service: TrustedService },
    /// A trusted service is on and the tree is still hidden: WeChat's server-side list
    /// may have changed. Only vision can read this phone.
    StillHidden { service: Option<TrustedService> },
    /// The tree is hidden and no trusted service is installed.
    NoTrustedService,
    /// TalkBack is on. Nothing was changed: taps would only move its focus.
    TalkBackOn,
    /// WeChat was not on the screen even after starting it (a lock screen, a call).
    WechatNotInFront { focus: String },
}

impl Prepared {
    /// Whether the phone can be read and driven through its tree now.
    pub fn ready(&self) -> bool {
        matches!(self, Prepared::TreeVisible | Prepared::TreeRestored { .. })
    }

    /// What to tell the user, in at most two lines.
    pub fn advice(&self, device: &str) -> String {
        match self {
            Prepared::TreeVisible => format!("{device}: WeChat's screen is readable."),
            Prepared::TreeRestored { service } => format!(
                "{device}: WeChat's screen is readable again through {} (undo with `tapwire phone restore`).",
                service.label
            ),
            Prepared::StillHidden { .. } => format!(
                "{device}: WeChat still hides its screen with a trusted accessibility service on (its server-side list may have changed).\nVision mode (reading screenshots) is the alternative for this phone."
            ),
            Prepared::NoTrustedService => format!(
                "{device}: WeChat hides its screen; install Android Accessibility Suite (Select to Speak) or 点明 on the phone, then run `tapwire phone prepare`.\nWhere neither can be installed, vision mode (reading screenshots) is the alternative."
            ),
            Prepared::TalkBackOn => format!(
                "{device}: TalkBack is on, so a tap only moves its focus and presses nothing; Tapwire will not drive this phone.\nTurn TalkBack off (Settings → Accessibility → TalkBack), then run `tapwire phone prepare`."
            ),
            Prepared::WechatNotInFront { focus } => format!(
                "{device}: WeChat is not on the screen (the focus is `{focus}`); unlock the phone and open WeChat."
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepareReport {
    pub prepared: Prepared,
    /// What this run changed (the record on the phone holds every run's).
    pub changes: Vec<SettingChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// Put back as they were.
    pub restored: Vec<SettingChange>,
    /// Changed by someone else since `prepare`, so left as they are now.
    pub left: Vec<(SettingChange, Option<String>)>,
}

/// The accessibility settings that decide whether WeChat shows its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Accessibility {
    services: Option<String>,
    enabled: bool,
    touch_exploration: bool,
}

impl Accessibility {
    fn entries(&self) -> impl Iterator<Item = &str> {
        self.services
            .as_deref()
            .unwrap_or("")
            .split(':')
            .filter(|e| !e.is_empty())
    }

    fn talkback_on(&self) -> bool {
        self.enabled
            && (self.touch_exploration || self.entries().any(|e| e.ends_with(TALKBACK_CLASS)))
    }

    /// The trusted service already listed, by WeChat's own test: a substring match on the
    /// class name.
    fn trusted_listed(&self) -> Option<TrustedService> {
        let services = self.services.as_deref().unwrap_or("");
        TRUSTED_SERVICES
            .into_iter()
            .find(|s| services.contains(class_of(s.component)))
    }
}

fn class_of(component: &str) -> &str {
    component.rsplit('/').next().unwrap_or(component)
}

/// Reads one setting; `None` when the phone has none (`settings get` prints `null`).
pub fn get_setting(
    phone: &mut dyn Transport,
    namespace: &str,
    key: &str,
) -> Result<Option<String>, PrepareError> {
    let out = phone.shell(&format!("settings get {namespace} {key}"))?;
    let text = out.stdout_text();
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    Ok((value != "null").then(|| value.to_string()))
}

fn run_checked(phone: &mut dyn Transport, command: &str) -> Result<String, PrepareError> {
    let out = phone.shell(command)?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(PrepareError::Rejected {
            device: phone.describe(),
            command: command.to_string(),
            output: format!("{}{}", out.stdout_text(), out.stderr_text())
                .trim()
                .to_string(),
        })
    }
}

fn put_setting(
    phone: &mut dyn Transport,
    namespace: &str,
    key: &str,
    value: Option<&str>,
) -> Result<(), PrepareError> {
    let command = match value {
        Some(value) => format!("settings put {namespace} {key} {}", shell_quote(value)),
        None => format!("settings delete {namespace} {key}"),
    };
    run_checked(phone, &command).map(drop)
}

fn accessibility(phone: &mut dyn Transport) -> Result<Accessibility, PrepareError> {
    let on = |v: Option<String>| v.is_some_and(|v| v.trim() == "1");
    Ok(Accessibility {
        services: get_setting(phone, "secure", SERVICES_KEY)?,
        enabled: on(get_setting(phone, "secure", "accessibility_enabled")?),
        touch_exploration: on(get_setting(phone, "secure", "touch_exploration_enabled")?),
    })
}

/// Whether TalkBack is on: then the tree shows but taps only move focus, and nothing may
/// be tapped on this phone.
pub fn talkback_on(phone: &mut dyn Transport) -> Result<bool, PrepareError> {
    Ok(accessibility(phone)?.talkback_on())
}

/// The trusted services installed on the phone, in Tapwire's order of preference.
pub fn installed_trusted_services(
    phone: &mut dyn Transport,
) -> Result<Vec<TrustedService>, PrepareError> {
    let listed = phone.shell("pm list packages")?.stdout_text();
    let installed: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("package:"))
        .collect();
    Ok(TRUSTED_SERVICES
        .into_iter()
        .filter(|s| installed.contains(&s.package))
        .collect())
}

/// Dumps the screen and says whether WeChat's tree is visible, starting WeChat first when
/// another app is in front. A dump that fails mid-transition is tried again.
pub fn probe_tree(phone: &mut dyn Transport) -> Result<TreeVisibility, PrepareError> {
    const ATTEMPTS: u32 = 5;
    let mut launched = false;
    let mut last = TreeVisibility::NoWechat;
    for attempt in 0..ATTEMPTS {
        let raw = phone.shell("uiautomator dump /dev/tty")?.stdout_text();
        match Dump::parse(&raw) {
            Ok(dump) => {
                last = tree_visibility(&dump, "com.tencent.mm");
                match last {
                    TreeVisibility::NoWechat if !launched => {
                        run_checked(phone, &format!("am start -n {WECHAT_LAUNCHER}"))?;
                        launched = true;
                    }
                    TreeVisibility::NoWechat => {}
                    visible_or_hidden => return Ok(visible_or_hidden),
                }
            }
            Err(error) => {
                tracing::debug!(device = %phone.describe(), attempt, %error, "dump failed while probing the tree")
            }
        }
        std::thread::sleep(Duration::from_millis(300 * u64::from(attempt + 1)));
    }
    Ok(last)
}

/// What is in front, for the message when WeChat is not.
fn focus(phone: &mut dyn Transport) -> Result<String, PrepareError> {
    let out = phone
        .shell("dumpsys window | grep mCurrentFocus")?
        .stdout_text();
    Ok(out
        .lines()
        .next()
        .and_then(|l| l.split_once('='))
        .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string()))
}

/// Reads the record of earlier changes on the phone (empty when there is none).
pub fn read_record(phone: &mut dyn Transport) -> Result<PrepareRecord, PrepareError> {
    // Without shell v2 (adbd over TCP, old phones) stderr arrives in stdout and there is
    // no exit status: a missing file must print nothing at all.
    let out = phone.shell(&format!("cat {RECORD_PATH} 2>/dev/null"))?;
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(PrepareRecord::default());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| PrepareError::BadRecord {
        device: phone.describe(),
        error: e.to_string(),
    })
}

fn write_record(phone: &mut dyn Transport, record: &PrepareRecord) -> Result<(), PrepareError> {
    if record.changes.is_empty() {
        return run_checked(phone, &format!("rm -f {RECORD_PATH}")).map(drop);
    }
    let json = serde_json::to_string(record).map_err(|e| PrepareError::BadRecord {
        device: phone.describe(),
        error: e.to_string(),
    })?;
    run_checked(
        phone,
        &format!("echo {} > {RECORD_PATH}", shell_quote(&json)),
    )
    .map(drop)
}

/// Changes one setting when it differs, and notes the change in `done`.
fn change(
    phone: &mut dyn Transport,
    done: &mut Vec<SettingChange>,
    namespace: &str,
    key: &str,
    before: Option<String>,
    after: &str,
) -> Result<(), PrepareError> {
    if before.as_deref() == Some(after) {
        return Ok(());
    }
    put_setting(phone, namespace, key, Some(after))?;
    tracing::info!(device = %phone.describe(), namespace, key, ?before, after, "setting changed");
    done.push(SettingChange {
        namespace: namespace.to_string(),
        key: key.to_string(),
        before,
        after: after.to_string(),
    });
    Ok(())
}

/// Makes the phone readable through its UI tree where it allows it: animations off, and
/// where WeChat hides its tree, an installed trusted accessibility service appended to
/// the user's own (theirs stay, in their order). Proves the tree is back with a new dump,
/// and records every change on the phone for [`restore`].
pub fn prepare(phone: &mut dyn Transport) -> Result<PrepareReport, PrepareError> {
    let access = accessibility(phone)?;
    if access.talkback_on() {
        return Ok(PrepareReport {
            prepared: Prepared::TalkBackOn,
            changes: Vec::new(),
        });
    }
    let mut changes = Vec::new();
    for key in ANIMATION_SCALES {
        let before = get_setting(phone, "global", key)?;
        // "0.0" and "0" both mean off; rewriting one as the other is a needless change.
        if before.as_deref().and_then(|v| v.parse::<f32>().ok()) != Some(0.0) {
            change(phone, &mut changes, "global", key, before, "0")?;
        }
    }
    let prepared = match probe_tree(phone)? {
        TreeVisibility::Visible => Prepared::TreeVisible,
        TreeVisibility::NoWechat => Prepared::WechatNotInFront {
            focus: focus(phone)?,
        },
        TreeVisibility::Hidden => bring_tree_back(phone, &access, &mut changes)?,
    };
    if !changes.is_empty() {
        let mut record = read_record(phone)?;
        for c in &changes {
            record.merge(c.clone());
        }
        write_record(phone, &record)?;
    }
    Ok(PrepareReport { prepared, changes })
}

fn bring_tree_back(
    phone: &mut dyn Transport,
    access: &Accessibility,
    changes: &mut Vec<SettingChange>,
) -> Result<Prepared, PrepareError> {
    let listed = access.trusted_listed();
    let service = match listed {
        Some(service) if access.enabled => {
            return Ok(Prepared::StillHidden {
                service: Some(service),
            });
        }
        Some(service) => service,
        None => {
            let Some(service) = installed_trusted_services(phone)?.into_iter().next() else {
                return Ok(Prepared::NoTrustedService);
            };
            let appended = match access.services.as_deref() {
                None | Some("") => service.component.to_string(),
                Some(theirs) => format!("{theirs}:{}", service.component),
            };
            change(
                phone,
                changes,
                "secure",
                SERVICES_KEY,
                access.services.clone(),
                &appended,
            )?;
            service
        }
    };
    let enabled_before = get_setting(phone, "secure", "accessibility_enabled")?;
    change(
        phone,
        changes,
        "secure",
        "accessibility_enabled",
        enabled_before,
        "1",
    )?;
    // WeChat's nodes come back on its next redraw after the service binds.
    for attempt in 0..4u64 {
        std::thread::sleep(Duration::from_millis(250 * (attempt + 1)));
        if probe_tree(phone)? == TreeVisibility::Visible {
            return Ok(Prepared::TreeRestored { service });
        }
    }
    Ok(Prepared::StillHidden {
        service: Some(service),
    })
}

/// Puts back every setting `prepare` changed, exactly as it was, unless someone changed it
/// since: then the service list loses only the entry Tapwire added, and anything else is
/// left as it is now (and reported).
pub fn restore(phone: &mut dyn Transport) -> Result<RestoreReport, PrepareError> {
    let record = read_record(phone)?;
    let mut report = RestoreReport::default();
    for change in record.changes.iter().rev() {
        let now = get_setting(phone, &change.namespace, &change.key)?;
        if now.as_deref() == Some(change.after.as_str()) {
            put_setting(
                phone,
                &change.namespace,
                &change.key,
                change.before.as_deref(),
            )?;
            report.restored.push(change.clone());
        } else if change.key == SERVICES_KEY
            && let Some(now) = now.as_deref()
        {
            let ours = added_entries(change);
            let kept: Vec<&str> = now
                .split(':')
                .filter(|e| !e.is_empty() && !ours.contains(e))
                .collect();
            let value = kept.join(":");
            let value = (!value.is_empty() || change.before.is_some()).then_some(value);
            put_setting(phone, &change.namespace, &change.key, value.as_deref())?;
            report.left.push((change.clone(), value));
        } else {
            report.left.push((change.clone(), now));
        }
    }
    write_record(phone, &PrepareRecord::default())?;
    Ok(report)
}

/// The service entries `prepare` appended.
fn added_entries(change: &SettingChange) -> Vec<&str> {
    let before: Vec<&str> = change.before.as_deref().unwrap_or("").split(':').collect();
    change
        .after
        .split(':')
        .filter(|e| !e.is_empty() && !before.contains(e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(services: Option<&str>, enabled: bool, touch: bool) -> Accessibility {
        Accessibility {
            services: services.map(str::to_string),
            enabled,
            touch_exploration: touch,
        }
    }

    #[test]
    fn talkback_counts_only_when_accessibility_is_on() {
        let talkback =
            "com.google.android.marvin.talkback/com.google.android.marvin.talkback.TalkBackService";
        assert!(access(Some(talkback), true, false).talkback_on());
        assert!(!access(Some(talkback), false, false).talkback_on());
        assert!(access(None, true, true).talkback_on());
        assert!(!access(Some(TRUSTED_SERVICES[0].component), true, false).talkback_on());
    }

    #[test]
    fn a_trusted_class_is_found_by_substring_as_wechat_does() {
        // Short-form component names still contain the class.
        let short = "com.dianming.phoneapp/com.dianming.phoneapp.MyAccessibilityService";
        let a = access(Some(&format!("a.b/.C:{short}")), true, false);
        assert_eq!(a.trusted_listed(), Some(TRUSTED_SERVICES[1]));
        assert_eq!(access(Some("a.b/.C"), true, false).trusted_listed(), None);
    }

    #[test]
    fn a_second_prepare_keeps_the_users_first_value() {
        let mut record = PrepareRecord::default();
        record.merge(SettingChange {
            namespace: "global".into(),
            key: "window_animation_scale".into(),
            before: Some("1.0".into()),
            after: "0".into(),
        });
        record.merge(SettingChange {
            namespace: "global".into(),
            key: "window_animation_scale".into(),
            before: Some("0.5".into()),
            after: "0".into(),
        });
        assert_eq!(record.changes.len(), 1);
        assert_eq!(record.changes[0].before.as_deref(), Some("1.0"));
    }

    #[test]
    fn only_the_appended_entry_is_ours() {
        let change = SettingChange {
            namespace: "secure".into(),
            key: SERVICES_KEY.into(),
            before: Some("x.y/.Z".into()),
            after: format!("x.y/.Z:{}", TRUSTED_SERVICES[0].component),
        };
        assert_eq!(added_entries(&change), vec![TRUSTED_SERVICES[0].component]);
    }
}
