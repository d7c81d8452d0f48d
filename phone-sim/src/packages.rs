//! The packages installed on the phone, as `pm` and `dumpsys package` report them, and the
//! accessibility services they ship.
//!
//! The base set is what a vivo phone with WeChat, the ADB keyboard and a clipboard helper
//! lists. Two packages are a setting of the sim, because whether WeChat shows its tree
//! depends on them: Google's Android Accessibility Suite (Select to Speak, TalkBack), present
//! on phones with Google services and so installed by default, and 点明 (Dianming), a Chinese
//! screen reader a user installs. Paths, version numbers and uids are the sim's own values.

use thiserror::Error;

pub const WECHAT_PKG: &str = "com.tencent.mm";
/// WeChat's app uid, which notifications and logs carry too.
pub const WECHAT_UID: u32 = 10245;
/// Google's Android Accessibility Suite.
pub const TALKBACK_PKG: &str = "com.google.android.marvin.talkback";
/// 点明 (Dianming).
pub const DIANMING_PKG: &str = "com.dianming.phoneapp";

/// An accessibility service a package declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct A11yService {
    /// Fully qualified class name.
    pub class: &'static str,
    /// The label `dumpsys accessibility` prints (the phone's locale is zh-CN).
    pub label: &'static str,
    /// `AccessibilityServiceInfo.feedbackTypeToString` of the service's feedback type.
    pub feedback: &'static str,
    /// `AccessibilityServiceInfo.getCapabilities()`.
    pub capabilities: u32,
    /// Whether it asks for the accessibility button (`FLAG_REQUEST_ACCESSIBILITY_BUTTON`).
    pub requests_button: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    pub name: &'static str,
    /// The base APK (`pm path`, `pm list packages -f`).
    pub apk: &'static str,
    pub version_name: &'static str,
    pub version_code: u64,
    pub uid: u32,
    /// Preinstalled on the system image (`pm list packages -s`) rather than by the user (`-3`).
    pub system: bool,
    pub installer: &'static str,
    pub services: &'static [A11yService],
    /// Whether the sim lets a test install or remove it.
    pub optional: bool,
}

const fn base(
    name: &'static str,
    apk: &'static str,
    (version_name, version_code): (&'static str, u64),
    uid: u32,
    system: bool,
    installer: &'static str,
) -> Package {
    Package {
        name,
        apk,
        version_name,
        version_code,
        uid,
        system,
        installer,
        services: &[],
        optional: false,
    }
}

// Capabilities: 1 retrieve window content, 2 touch exploration, 8 filter key events,
// 32 perform gestures.
const SUITE_SERVICES: &[A11yService] = &[
    A11yService {
        class: "com.google.android.marvin.talkback.TalkBackService",
        label: "TalkBack",
        feedback: "[FEEDBACK_SPOKEN, FEEDBACK_HAPTIC, FEEDBACK_AUDIBLE]",
        capabilities: 1 | 2 | 8 | 32,
        requests_button: false,
    },
    A11yService {
        class: "com.google.android.accessibility.selecttospeak.SelectToSpeakService",
        label: "随选朗读",
        feedback: "[FEEDBACK_SPOKEN]",
        capabilities: 1 | 32,
        requests_button: true,
    },
    A11yService {
        class: "com.google.android.accessibility.accessibilitymenu.AccessibilityMenuService",
        label: "无障碍功能菜单",
        feedback: "[FEEDBACK_GENERIC]",
        capabilities: 1 | 32,
        requests_button: true,
    },
    A11yService {
        class: "com.android.switchaccess.SwitchAccessService",
        label: "开关控制",
        feedback: "[FEEDBACK_GENERIC]",
        capabilities: 1 | 8 | 32,
        requests_button: false,
    },
];

const DIANMING_SERVICES: &[A11yService] = &[A11yService {
    class: "com.dianming.phoneapp.MyAccessibilityService",
    label: "点明安卓",
    feedback: "[FEEDBACK_SPOKEN]",
    capabilities: 1 | 2 | 8 | 32,
    requests_button: false,
}];

/// Every package the sim knows, in the order `pm list packages` prints the installed ones.
pub const CATALOG: &[Package] = &[
    base(
        "android",
        "/system/framework/framework-res.apk",
        ("14", 34),
        1000,
        true,
        "null",
    ),
    base(
        "com.android.systemui",
        "/system_ext/priv-app/SystemUI/SystemUI.apk",
        ("14", 34),
        10143,
        true,
        "null",
    ),
    base(
        "com.android.settings",
        "/system_ext/priv-app/Settings/Settings.apk",
        ("14", 34),
        1000,
        true,
        "null",
    ),
    base(
        "com.bbk.launcher2",
        "/system/priv-app/BBKLauncher2/BBKLauncher2.apk",
        ("14.1.0.20", 1410020),
        10112,
        true,
        "null",
    ),
    base(
        "com.vivo.upslide",
        "/system/app/VivoUpslide/VivoUpslide.apk",
        ("3.2.1.6", 3216),
        10118,
        true,
        "null",
    ),
    Package {
        name: TALKBACK_PKG,
        apk: "/product/app/talkback/talkback.apk",
        version_name: "14.1.0.567426553",
        version_code: 60150215,
        uid: 10163,
        system: true,
        installer: "com.android.vending",
        services: SUITE_SERVICES,
        optional: true,
    },
    // The version here is a placeholder: `dumpsys package` reports the configured WeChat version.
    base(
        WECHAT_PKG,
        "/data/app/~~Qm8cVnZ2kX1_2rPa==/com.tencent.mm-Jx1n4q==/base.apk",
        ("8.0.50", 2840),
        WECHAT_UID,
        false,
        "com.bbk.appstore",
    ),
    base(
        "com.android.adbkeyboard",
        "/data/app/~~R2dLm0vQy7s3Ka1f==/com.android.adbkeyboard-b7Vx2Qe9==/base.apk",
        ("2.4-dev", 24),
        10251,
        false,
        "null",
    ),
    base(
        "ca.zgrs.clipper",
        "/data/app/~~c4Jt8pWn3Xe0Lq5r==/ca.zgrs.clipper-Vn0aT1k2==/base.apk",
        ("1.2.1", 4),
        10252,
        false,
        "null",
    ),
    base(
        "com.sohu.inputmethod.sogou.vivo",
        "/system/app/SogouInput/SogouInput.apk",
        ("11.26.1", 11261),
        10131,
        true,
        "null",
    ),
    Package {
        name: DIANMING_PKG,
        apk: "/data/app/~~t6Hs1mQa9Zc2Wd4e==/com.dianming.phoneapp-Kp3s8Lr1==/base.apk",
        version_name: "3.3.6",
        version_code: 336,
        uid: 10253,
        system: false,
        installer: "com.bbk.appstore",
        services: DIANMING_SERVICES,
        optional: true,
    },
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PackageError {
    #[error(
        "{0} is not a package the sim can install or remove (it can: {TALKBACK_PKG}, {DIANMING_PKG})"
    )]
    NotOptional(String),
}

/// Which catalogue packages are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    installed: Vec<&'static str>,
}

impl Packages {
    /// The base set, with the Accessibility Suite and 点明 as asked.
    pub fn new(accessibility_suite: bool, dianming: bool) -> Packages {
        Packages {
            installed: CATALOG
                .iter()
                .filter(|p| match p.name {
                    TALKBACK_PKG => accessibility_suite,
                    DIANMING_PKG => dianming,
                    _ => true,
                })
                .map(|p| p.name)
                .collect(),
        }
    }

    pub fn installed(&self) -> impl Iterator<Item = &'static Package> + '_ {
        CATALOG.iter().filter(|p| self.installed.contains(&p.name))
    }

    pub fn get(&self, name: &str) -> Option<&'static Package> {
        self.installed().find(|p| p.name == name)
    }

    pub fn is_installed(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn optional(name: &str) -> Result<&'static Package, PackageError> {
        CATALOG
            .iter()
            .find(|p| p.name == name && p.optional)
            .ok_or_else(|| PackageError::NotOptional(name.to_string()))
    }

    pub fn install(&mut self, name: &str) -> Result<(), PackageError> {
        let p = Self::optional(name)?;
        if !self.installed.contains(&p.name) {
            self.installed.push(p.name);
        }
        Ok(())
    }

    pub fn uninstall(&mut self, name: &str) -> Result<(), PackageError> {
        let p = Self::optional(name)?;
        self.installed.retain(|n| *n != p.name);
        Ok(())
    }

    /// The accessibility service `package/class` if that package is installed and declares it.
    pub fn service(&self, package: &str, class: &str) -> Option<&'static A11yService> {
        self.get(package)?
            .services
            .iter()
            .find(|s| s.class == class)
    }

    pub fn service_count(&self) -> usize {
        self.installed().map(|p| p.services.len()).sum()
    }
}

impl Default for Packages {
    fn default() -> Self {
        Packages::new(true, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_by_default_dianming_on_request() {
        let p = Packages::default();
        assert!(p.is_installed(TALKBACK_PKG));
        assert!(!p.is_installed(DIANMING_PKG));
        assert!(p.is_installed(WECHAT_PKG));
        let p = Packages::new(false, true);
        assert!(!p.is_installed(TALKBACK_PKG));
        assert!(p.is_installed(DIANMING_PKG));
        assert!(
            p.service(DIANMING_PKG, "com.dianming.phoneapp.MyAccessibilityService")
                .is_some()
        );
        assert_eq!(p.service_count(), 1);
    }

    #[test]
    fn only_the_optional_packages_come_and_go() {
        let mut p = Packages::default();
        p.install(DIANMING_PKG).expect("optional");
        p.install(DIANMING_PKG).expect("twice is fine");
        assert_eq!(p.installed().filter(|x| x.name == DIANMING_PKG).count(), 1);
        p.uninstall(TALKBACK_PKG).expect("optional");
        assert!(!p.is_installed(TALKBACK_PKG));
        assert_eq!(
            p.uninstall(WECHAT_PKG),
            Err(PackageError::NotOptional(WECHAT_PKG.into()))
        );
        assert!(p.install("com.example.nope").is_err());
    }
}
