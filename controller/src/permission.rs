//! Who may run what: a user is granted a scene, one command of a scene, or everything,
//! until a date or for good. Grants live in the store; admins come from the config.

use std::time::{Duration, SystemTime};

use crate::event::Event;

/// One permission: `scene` `*` is everything, `command` empty the whole scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub scene: String,
    pub command: String,
    /// RFC 3339 UTC; `None` never expires.
    pub expires_at: Option<String>,
    pub granted_by: String,
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Everything,
    Scene(String),
    Command(String, String),
}

impl Target {
    /// The `(scene, command)` columns the store keeps.
    pub fn columns(&self) -> (&str, &str) {
        match self {
            Target::Everything => ("*", ""),
            Target::Scene(scene) => (scene, ""),
            Target::Command(scene, command) => (scene, command),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Everything => "everything".into(),
            Target::Scene(scene) => scene.clone(),
            Target::Command(scene, command) => format!("{scene} {command}"),
        }
    }
}

/// When a grant ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    Forever,
    /// RFC 3339 UTC with milliseconds: the store compares these as text.
    At(String),
}

impl Until {
    /// `YYYY-MM-DD` means through that day (UTC), so the grant ends at the next midnight;
    /// a full RFC 3339 time ends it then.
    pub fn parse(text: &str) -> Result<Until, String> {
        let bad = || format!("\"{text}\" is not a date (YYYY-MM-DD) or an RFC 3339 time");
        let instant = if text.len() == 10 {
            humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| bad())?
                + Duration::from_secs(24 * 3600)
        } else {
            humantime::parse_rfc3339_weak(text).map_err(|_| bad())?
        };
        Ok(Until::At(
            humantime::format_rfc3339_millis(instant).to_string(),
        ))
    }

    pub fn expires_at(&self) -> Option<String> {
        match self {
            Until::Forever => None,
            Until::At(at) => Some(at.clone()),
        }
    }
}

/// What one user may do right now.
#[derive(Debug, Clone)]
pub struct Access {
    pub admin: bool,
    grants: Vec<Grant>,
    now: String,
}

impl Access {
    /// `now` is RFC 3339 UTC with milliseconds, the form grants are stored in.
    pub fn new(admin: bool, grants: Vec<Grant>, now: &str) -> Access {
        Access {
            admin,
            grants,
            now: now.to_string(),
        }
    }

    pub fn at(admin: bool, grants: Vec<Grant>, now: SystemTime) -> Access {
        Access::new(
            admin,
            grants,
            &humantime::format_rfc3339_millis(now).to_string(),
        )
    }

    pub fn may(&self, scene: &str, command: &str, public: bool) -> bool {
        public
            || self.admin
            || self.grants.iter().any(|g| {
                g.expires_at
                    .as_deref()
                    .is_none_or(|end| end > self.now.as_str())
                    && (g.scene == "*"
                        || (g.scene == scene && (g.command.is_empty() || g.command == command)))
            })
    }

    /// The grants as `perms` shows them, lapsed ones marked.
    pub fn describe(&self) -> String {
        if self.admin {
            return "admin: everything".into();
        }
        if self.grants.is_empty() {
            return "no grants: public commands only".into();
        }
        self.grants
            .iter()
            .map(|g| {
                let what = match (g.scene.as_str(), g.command.as_str()) {
                    ("*", _) => "everything".to_string(),
                    (scene, "") => scene.to_string(),
                    (scene, command) => format!("{scene} {command}"),
                };
                match &g.expires_at {
                    None => what,
                    Some(end) if end.as_str() > self.now.as_str() => {
                        format!("{what} until {}", &end[..10.min(end.len())])
                    }
                    Some(end) => format!("{what} (expired {})", &end[..10.min(end.len())]),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A user as grants name them: `<platform>:<sender id>`, so the same name on two
/// platforms is two people.
pub fn user_key(event: &Event) -> Option<String> {
    event
        .sender
        .as_ref()
        .map(|s| format!("{}:{}", event.platform, s.id))
}

/// A user named in an admin command: `李娜` means someone on the admin's own platform.
pub fn qualify(user: &str, platform: &str) -> String {
    if user.contains(':') {
        user.to_string()
    } else {
        format!("{platform}:{user}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scene: &str, command: &str, expires: Option<&str>) -> Grant {
        Grant {
            user: "wechat:a".into(),
            scene: scene.into(),
            command: command.into(),
            expires_at: expires.map(str::to_string),
            granted_by: "wechat:admin".into(),
        }
    }

    #[test]
    fn grants_cover_scene_command_or_everything_until_they_expire() {
        let now = "2026-11-24T12:00:00.000Z";
        let cases: Vec<(Vec<Grant>, (&str, &str), bool)> = vec![
            (vec![], ("roster", "swap"), false),
            (vec![grant("roster", "", None)], ("roster", "swap"), true),
            (
                vec![grant("roster", "who", None)],
                ("roster", "swap"),
                false,
            ),
            (
                vec![grant("roster", "swap", None)],
                ("roster", "swap"),
                true,
            ),
            (vec![grant("ops", "", None)], ("roster", "swap"), false),
            (vec![grant("*", "", None)], ("roster", "swap"), true),
            (
                vec![grant("roster", "", Some("2026-11-24T12:00:00.001Z"))],
                ("roster", "swap"),
                true,
            ),
            (
                vec![grant("roster", "", Some("2026-11-24T12:00:00.000Z"))],
                ("roster", "swap"),
                false,
            ),
            (
                vec![grant("*", "", Some("2026-01-01T00:00:00.000Z"))],
                ("roster", "swap"),
                false,
            ),
        ];
        for (grants, (scene, command), expected) in cases {
            let access = Access::new(false, grants.clone(), now);
            assert_eq!(access.may(scene, command, false), expected, "{grants:?}");
            assert!(access.may(scene, command, true), "public is for everyone");
        }
        assert!(Access::new(true, vec![], now).may("x", "y", false));
    }

    #[test]
    fn until_a_date_means_through_that_day() {
        assert_eq!(
            Until::parse("2026-12-31"),
            Ok(Until::At("2027-01-01T00:00:00.000Z".into()))
        );
        assert_eq!(
            Until::parse("2026-12-31T08:30:00Z"),
            Ok(Until::At("2026-12-31T08:30:00.000Z".into()))
        );
        assert!(Until::parse("2026-13-01").is_err());
        assert!(Until::parse("soon").is_err());
        let access = Access::new(
            false,
            vec![grant("roster", "", Some("2026-11-25T00:00:00.000Z"))],
            "2026-11-24T12:00:00.000Z",
        );
        assert_eq!(access.describe(), "roster until 2026-11-25");
        let lapsed = Access::new(
            false,
            vec![grant("roster", "", Some("2026-11-01T00:00:00.000Z"))],
            "2026-11-24T12:00:00.000Z",
        );
        assert_eq!(lapsed.describe(), "roster (expired 2026-11-01)");
    }
}
