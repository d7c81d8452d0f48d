//! Android's settings tables (`Settings.System`, `Settings.Secure`, `Settings.Global`) of the
//! phone's only user. They belong to the phone, not to an ADB connection: what one host puts
//! is what the next one reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// `Settings.Secure` keys the sim's behaviour depends on, under Android's names.
/// The keyboard that receives text (`ime set` writes it too).
pub const DEFAULT_INPUT_METHOD: &str = "default_input_method";
/// A `:`-separated list of `package/class` accessibility services the user turned on.
pub const ENABLED_ACCESSIBILITY_SERVICES: &str = "enabled_accessibility_services";
pub const ACCESSIBILITY_ENABLED: &str = "accessibility_enabled";
pub const TOUCH_EXPLORATION_ENABLED: &str = "touch_exploration_enabled";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    System,
    Secure,
    Global,
}

impl Namespace {
    pub const ALL: [Namespace; 3] = [Namespace::System, Namespace::Secure, Namespace::Global];

    /// `settings` takes the table name in any case (`equalsIgnoreCase` in SettingsService).
    pub fn parse(name: &str) -> Option<Namespace> {
        Namespace::ALL
            .into_iter()
            .find(|ns| ns.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Namespace::System => "system",
            Namespace::Secure => "secure",
            Namespace::Global => "global",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    tables: BTreeMap<Namespace, BTreeMap<String, String>>,
}

impl Settings {
    /// What a freshly set-up phone holds for the keys the sim's behaviour depends on. A key
    /// Android only writes once a feature is used (`enabled_accessibility_services`) is absent,
    /// so `settings get` prints `null` for it, as on a phone where no service was ever turned on.
    pub fn phone_defaults(input_method: &str) -> Settings {
        let mut s = Settings::default();
        for key in [
            "window_animation_scale",
            "transition_animation_scale",
            "animator_duration_scale",
        ] {
            s.put(Namespace::Global, key, "1.0");
        }
        s.put(Namespace::Secure, DEFAULT_INPUT_METHOD, input_method);
        s.put(Namespace::Secure, ACCESSIBILITY_ENABLED, "0");
        s.put(Namespace::Secure, TOUCH_EXPLORATION_ENABLED, "0");
        s.put(Namespace::System, "font_scale", "1.0");
        s.put(Namespace::System, "screen_off_timeout", "60000");
        s
    }

    pub fn get(&self, ns: Namespace, key: &str) -> Option<&str> {
        self.tables.get(&ns)?.get(key).map(String::as_str)
    }

    pub fn put(&mut self, ns: Namespace, key: &str, value: &str) {
        self.tables
            .entry(ns)
            .or_default()
            .insert(key.to_string(), value.to_string());
    }

    /// Whether a row was there to delete.
    pub fn delete(&mut self, ns: Namespace, key: &str) -> bool {
        self.tables
            .get_mut(&ns)
            .is_some_and(|t| t.remove(key).is_some())
    }

    /// `key=value` lines sorted as whole lines, which is how SettingsService sorts them (a key
    /// with a `.` sorts before its own prefix's `=`).
    pub fn list(&self, ns: Namespace) -> Vec<String> {
        let mut lines: Vec<String> = self
            .tables
            .get(&ns)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.sort();
        lines
    }

    pub fn table(&self, ns: Namespace) -> BTreeMap<String, String> {
        self.tables.get(&ns).cloned().unwrap_or_default()
    }
}

/// A setting a phone starts with, written `namespace:key=value` on the command line (the value
/// may itself hold `:` and `=`, as a list of accessibility services does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preset {
    pub namespace: Namespace,
    pub key: String,
    pub value: String,
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{s:?} is not NAMESPACE:KEY=VALUE (e.g. secure:accessibility_enabled=1)");
        let (ns, rest) = s.split_once(':').ok_or_else(bad)?;
        let namespace =
            Namespace::parse(ns).ok_or_else(|| format!("unknown namespace {ns:?} in {s:?}"))?;
        let (key, value) = rest.split_once('=').ok_or_else(bad)?;
        if key.is_empty() {
            return Err(bad());
        }
        Ok(Preset {
            namespace,
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_until_put_and_gone_after_delete() {
        let mut s = Settings::phone_defaults("x/.Ime");
        assert_eq!(
            s.get(Namespace::Secure, "enabled_accessibility_services"),
            None
        );
        assert_eq!(s.get(Namespace::Secure, "accessibility_enabled"), Some("0"));
        assert_eq!(
            s.get(Namespace::Global, "window_animation_scale"),
            Some("1.0")
        );
        s.put(Namespace::Secure, "k", "v");
        assert_eq!(s.get(Namespace::Secure, "k"), Some("v"));
        assert_eq!(s.get(Namespace::Global, "k"), None, "tables are separate");
        assert!(s.delete(Namespace::Secure, "k"));
        assert!(!s.delete(Namespace::Secure, "k"));
    }

    #[test]
    fn lists_sort_whole_lines() {
        let mut s = Settings::default();
        s.put(Namespace::System, "a", "1");
        s.put(Namespace::System, "a.b", "2");
        s.put(Namespace::System, "a_c", "3");
        assert_eq!(s.list(Namespace::System), ["a.b=2", "a=1", "a_c=3"]);
        assert!(s.list(Namespace::Global).is_empty());
    }

    #[test]
    fn presets_split_at_the_first_colon_and_equals() {
        let p: Preset = "secure:enabled_accessibility_services=a/.B:c/.D=x"
            .parse()
            .expect("valid");
        assert_eq!(p.namespace, Namespace::Secure);
        assert_eq!(p.key, "enabled_accessibility_services");
        assert_eq!(p.value, "a/.B:c/.D=x");
        assert!("secure:novalue".parse::<Preset>().is_err());
        assert!("bogus:k=v".parse::<Preset>().is_err());
        assert!("secure:=v".parse::<Preset>().is_err());
    }

    #[test]
    fn namespace_names_ignore_case() {
        assert_eq!(Namespace::parse("SECURE"), Some(Namespace::Secure));
        assert_eq!(Namespace::parse("Global"), Some(Namespace::Global));
        assert_eq!(Namespace::parse("secret"), None);
    }
}
