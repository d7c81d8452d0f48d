//! What the phone's accessibility settings turn on, read from the settings and the installed
//! packages: which services run, whether TalkBack's touch exploration takes the taps, whether
//! WeChat ≥ 8.0.55 sees an accessibility service it trusts (and so keeps its view tree, see
//! DESIGN §4), and whether Android shows its floating accessibility button.
//!
//! The sim treats `accessibility_enabled` as the switch that lets enabled services run, which
//! is what tools toggle over adb together with the service list. (Android 8 and later also
//! write that key themselves once a service binds; the sim leaves it to the client.)

use serde::Serialize;

use crate::packages::{A11yService, DIANMING_PKG, Packages, TALKBACK_PKG};
use crate::settings::{
    ACCESSIBILITY_ENABLED, ENABLED_ACCESSIBILITY_SERVICES, Namespace, Settings,
    TOUCH_EXPLORATION_ENABLED,
};

pub const SELECT_TO_SPEAK_CLASS: &str =
    "com.google.android.accessibility.selecttospeak.SelectToSpeakService";
pub const DIANMING_CLASS: &str = "com.dianming.phoneapp.MyAccessibilityService";
pub const TALKBACK_CLASS: &str = "com.google.android.marvin.talkback.TalkBackService";

/// The class names WeChat's `AccUtil` looks for in `enabled_accessibility_services`, each with
/// the package that ships the service.
pub const WECHAT_WHITELIST: [(&str, &str); 2] = [
    (SELECT_TO_SPEAK_CLASS, TALKBACK_PKG),
    (DIANMING_CLASS, DIANMING_PKG),
];

/// `ComponentName`: a package and a fully qualified class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub package: String,
    pub class: String,
}

impl Component {
    /// `ComponentName.unflattenFromString`: `pkg/cls`, where a class starting with `.` is
    /// relative to the package.
    pub fn unflatten(s: &str) -> Option<Component> {
        let (package, class) = s.split_once('/')?;
        if package.is_empty() || class.is_empty() {
            return None;
        }
        let class = match class.strip_prefix('.') {
            Some(rest) => format!("{package}.{rest}"),
            None => class.to_string(),
        };
        Some(Component {
            package: package.to_string(),
            class,
        })
    }

    pub fn flatten(&self) -> String {
        format!("{}/{}", self.package, self.class)
    }

    /// `ComponentName.toShortString`, which `dumpsys accessibility` prints: braces, full class.
    pub fn short_string(&self) -> String {
        format!("{{{}/{}}}", self.package, self.class)
    }
}

/// A service that runs: enabled, installed, and accessibility switched on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub component: Component,
    pub service: &'static A11yService,
}

/// A read-only view over the two things the accessibility state follows from.
pub struct A11y<'a> {
    settings: &'a Settings,
    packages: &'a Packages,
}

impl<'a> A11y<'a> {
    pub fn new(settings: &'a Settings, packages: &'a Packages) -> Self {
        A11y { settings, packages }
    }

    /// The raw setting; absent reads as empty, as `Settings.Secure.getString` gives null.
    pub fn enabled_setting(&self) -> &'a str {
        self.settings
            .get(Namespace::Secure, ENABLED_ACCESSIBILITY_SERVICES)
            .unwrap_or("")
    }

    /// `Settings.Secure.getInt`: anything that is not an integer reads as the default, 0.
    fn secure_flag(&self, key: &str) -> bool {
        self.settings
            .get(Namespace::Secure, key)
            .and_then(|v| v.parse::<i64>().ok())
            == Some(1)
    }

    pub fn accessibility_enabled(&self) -> bool {
        self.secure_flag(ACCESSIBILITY_ENABLED)
    }

    /// The setting's entries, split on `:` as Android's `SimpleStringSplitter` does; entries
    /// that are not components are skipped.
    pub fn enabled(&self) -> Vec<Component> {
        self.enabled_setting()
            .split(':')
            .filter_map(Component::unflatten)
            .collect()
    }

    pub fn bound(&self) -> Vec<Bound> {
        if !self.accessibility_enabled() {
            return Vec::new();
        }
        let mut bound: Vec<Bound> = Vec::new();
        for component in self.enabled() {
            if bound.iter().any(|b| b.component == component) {
                continue;
            }
            if let Some(service) = self.packages.service(&component.package, &component.class) {
                bound.push(Bound { component, service });
            }
        }
        bound
    }

    fn is_bound(&self, package: &str, class: &str) -> bool {
        self.bound()
            .iter()
            .any(|b| b.component.package == package && b.component.class == class)
    }

    /// TalkBack runs and the user has touch exploration on: a tap then moves the
    /// accessibility focus and presses nothing.
    pub fn touch_exploration(&self) -> bool {
        self.secure_flag(TOUCH_EXPLORATION_ENABLED) && self.is_bound(TALKBACK_PKG, TALKBACK_CLASS)
    }

    /// Whether WeChat's `AccUtil.isAccessibilityEnabled()` holds: a whitelisted class name
    /// occurs anywhere in the setting (a plain substring test, as WeChat does), the package
    /// that ships it is installed and accessibility is on; or touch exploration is on.
    pub fn wechat_trusts(&self) -> bool {
        let setting = self.enabled_setting();
        let whitelisted = WECHAT_WHITELIST
            .iter()
            .any(|(class, package)| setting.contains(class) && self.packages.is_installed(package));
        (whitelisted && self.accessibility_enabled()) || self.touch_exploration()
    }

    /// Running services that ask for the accessibility button (Select to Speak does); with
    /// gesture navigation Android shows it as a floating button at the screen's edge.
    pub fn button_targets(&self) -> Vec<Bound> {
        self.bound()
            .into_iter()
            .filter(|b| b.service.requests_button)
            .collect()
    }

    pub fn installed_service_count(&self) -> usize {
        self.packages.service_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STS: &str = "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService";
    const DIANMING: &str = "com.dianming.phoneapp/com.dianming.phoneapp.MyAccessibilityService";
    const TALKBACK: &str =
        "com.google.android.marvin.talkback/com.google.android.marvin.talkback.TalkBackService";
    const OTHER: &str = "com.iflytek.inputmethod/.FlyAccessibilityService";

    fn phone(services: Option<&str>, enabled: &str) -> Settings {
        let mut s = Settings::phone_defaults("x/.Ime");
        if let Some(v) = services {
            s.put(Namespace::Secure, ENABLED_ACCESSIBILITY_SERVICES, v);
        }
        s.put(Namespace::Secure, ACCESSIBILITY_ENABLED, enabled);
        s
    }

    fn trusts(services: Option<&str>, enabled: &str, suite: bool, dianming: bool) -> bool {
        let s = phone(services, enabled);
        let p = Packages::new(suite, dianming);
        A11y::new(&s, &p).wechat_trusts()
    }

    #[test]
    fn whitelist_needs_the_name_the_package_and_the_switch() {
        // No service ever enabled: the key is absent.
        assert!(!trusts(None, "1", true, true));
        // Some other service only.
        assert!(!trusts(Some(OTHER), "1", true, true));
        for (service, suite, dianming) in [(STS, true, false), (DIANMING, false, true)] {
            assert!(trusts(Some(service), "1", suite, dianming), "{service}");
            assert!(
                !trusts(Some(service), "0", suite, dianming),
                "switch off: {service}"
            );
            assert!(
                !trusts(Some(service), "1", false, false),
                "not installed: {service}"
            );
            // After a user's existing entry, as a careful tool appends it.
            let both = format!("{OTHER}:{service}");
            assert!(trusts(Some(&both), "1", suite, dianming), "{both}");
        }
        // A plain substring test: WeChat does not parse the list.
        assert!(trusts(
            Some("garbage-com.dianming.phoneapp.MyAccessibilityService-garbage"),
            "1",
            false,
            true
        ));
        // A non-integer switch reads as 0.
        assert!(!trusts(Some(STS), "true", true, false));
    }

    #[test]
    fn talkback_counts_only_with_touch_exploration() {
        let p = Packages::default();
        let mut s = phone(Some(TALKBACK), "1");
        assert!(!A11y::new(&s, &p).touch_exploration());
        assert!(!A11y::new(&s, &p).wechat_trusts());
        s.put(Namespace::Secure, TOUCH_EXPLORATION_ENABLED, "1");
        assert!(A11y::new(&s, &p).touch_exploration());
        assert!(A11y::new(&s, &p).wechat_trusts());
        // The short form of the component is the same service.
        s.put(
            Namespace::Secure,
            ENABLED_ACCESSIBILITY_SERVICES,
            "com.google.android.marvin.talkback/.TalkBackService",
        );
        assert!(A11y::new(&s, &p).touch_exploration());
        s.put(Namespace::Secure, ACCESSIBILITY_ENABLED, "0");
        assert!(!A11y::new(&s, &p).touch_exploration());
        let without_suite = Packages::new(false, false);
        s.put(Namespace::Secure, ACCESSIBILITY_ENABLED, "1");
        assert!(!A11y::new(&s, &without_suite).touch_exploration());
    }

    #[test]
    fn bound_services_are_enabled_installed_and_switched_on() {
        let p = Packages::default();
        let s = phone(Some(&format!("{OTHER}:{STS}:{STS}:nonsense")), "1");
        let a = A11y::new(&s, &p);
        assert_eq!(a.enabled().len(), 3, "the unparsable entry is dropped");
        let bound = a.bound();
        assert_eq!(bound.len(), 1, "installed and listed once");
        assert_eq!(bound[0].component.flatten(), STS);
        assert_eq!(
            a.button_targets().len(),
            1,
            "Select to Speak asks for the button"
        );
        assert_eq!(
            Component::unflatten(OTHER).map(|c| c.short_string()),
            Some(
                "{com.iflytek.inputmethod/com.iflytek.inputmethod.FlyAccessibilityService}".into()
            )
        );
    }
}
