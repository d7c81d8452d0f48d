//! Commands in the xbot form `[scene] [cmd] [args]`: a scene is a plugin, a command one
//! of its functions. This module reads a message as a command and writes `help`; who may
//! run what is `permission`'s business, running it the pipeline's.

use crate::permission::{Access, Target, Until};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo {
    pub name: String,
    pub usage: String,
    pub help: String,
    /// Usable without a grant.
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    pub name: String,
    pub description: String,
    pub commands: Vec<CommandInfo>,
}

/// A prefix that sends the rest of a message to a handler: `#question` to an LLM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub prefix: String,
    pub handler: String,
    pub help: String,
}

/// Every scene and prefix a pipeline answers to.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    scenes: Vec<Scene>,
    /// Longest first, so `##` wins over `#`.
    prefixes: Vec<Prefix>,
}

impl Registry {
    pub fn new(mut scenes: Vec<Scene>, mut prefixes: Vec<Prefix>) -> Registry {
        scenes.sort_by(|a, b| a.name.cmp(&b.name));
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.prefix.len()));
        Registry { scenes, prefixes }
    }

    pub fn scene(&self, name: &str) -> Option<&Scene> {
        self.scenes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    pub fn scenes(&self) -> &[Scene] {
        &self.scenes
    }

    /// Reads a message. Anything that is not addressed to a scene, a prefix or the
    /// controller is `NotCommand`, and flows on to the plugins and the fallback.
    pub fn parse(&self, text: &str) -> Parsed {
        let text = text.trim();
        for prefix in &self.prefixes {
            if let Some(rest) = text.strip_prefix(prefix.prefix.as_str()) {
                return Parsed::Prefix {
                    handler: prefix.handler.clone(),
                    rest: rest.trim().to_string(),
                };
            }
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((first, rest)) = words.split_first() else {
            return Parsed::NotCommand;
        };
        match first.to_lowercase().as_str() {
            "help" | "帮助" => {
                return Parsed::Help {
                    scene: rest.first().map(|s| s.to_lowercase()),
                    command: rest.get(1).map(|s| s.to_lowercase()),
                };
            }
            "grant" => return parse_grant(rest),
            "revoke" => return parse_revoke(rest),
            "perms" => {
                return Parsed::Admin(Admin::Perms {
                    user: rest.first().map(|s| s.to_string()),
                });
            }
            _ => {}
        }
        let Some(scene) = self.scene(first) else {
            return Parsed::NotCommand;
        };
        let Some(command) = rest.first() else {
            return Parsed::UnknownCommand {
                scene: scene.name.clone(),
                command: None,
            };
        };
        match scene
            .commands
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(command))
        {
            Some(found) => Parsed::Command {
                scene: scene.name.clone(),
                command: found.name.clone(),
                args: rest[1..].iter().map(|s| s.to_string()).collect(),
            },
            None => Parsed::UnknownCommand {
                scene: scene.name.clone(),
                command: Some(command.to_string()),
            },
        }
    }

    /// `help`, `help <scene>`, `help <scene> <cmd>`: only what `access` may use, so a
    /// list never advertises a command that would be refused.
    pub fn help(&self, access: &Access, scene: Option<&str>, command: Option<&str>) -> String {
        let Some(scene_name) = scene else {
            return self.overview(access);
        };
        if scene_name == "help" {
            return "help: what you can use here\nhelp <scene>: one scene's commands\nhelp <scene> <command>: one command".into();
        }
        let Some(scene) = self.scene(scene_name) else {
            return format!(
                "No scene \"{scene_name}\". {}",
                self.scene_list(access)
                    .map_or("Send help for what you can use.".into(), |l| format!(
                        "Scenes: {l}."
                    ))
            );
        };
        let usable: Vec<&CommandInfo> = scene
            .commands
            .iter()
            .filter(|c| access.may(&scene.name, &c.name, c.public))
            .collect();
        match command {
            None if usable.is_empty() => format!(
                "{}: {}\nYou may not use its commands yet; ask an admin for a grant.",
                scene.name, scene.description
            ),
            None => {
                let mut out = format!("{}: {}", scene.name, scene.description);
                for c in usable {
                    out.push_str(&format!("\n{}: {}", c.usage, c.help));
                }
                out
            }
            Some(command) => match scene
                .commands
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(command))
            {
                Some(c) if access.may(&scene.name, &c.name, c.public) => {
                    format!("{}\n{}", c.usage, c.help)
                }
                Some(c) => format!(
                    "You may not use {} {}; ask an admin for a grant.",
                    scene.name, c.name
                ),
                None => format!(
                    "{} has no command \"{command}\". Send help {} for its commands.",
                    scene.name, scene.name
                ),
            },
        }
    }

    fn scene_list(&self, access: &Access) -> Option<String> {
        let names: Vec<&str> = self
            .scenes
            .iter()
            .filter(|s| {
                s.commands
                    .iter()
                    .any(|c| access.may(&s.name, &c.name, c.public))
            })
            .map(|s| s.name.as_str())
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    fn overview(&self, access: &Access) -> String {
        let mut out = String::from("Tapwire commands:\nhelp: this list");
        for scene in &self.scenes {
            let usable: Vec<&str> = scene
                .commands
                .iter()
                .filter(|c| access.may(&scene.name, &c.name, c.public))
                .map(|c| c.name.as_str())
                .collect();
            if !usable.is_empty() {
                out.push_str(&format!(
                    "\n{} {}: {}",
                    scene.name,
                    usable.join("|"),
                    scene.description
                ));
            }
        }
        for prefix in &self.prefixes {
            out.push_str(&format!("\n{}<text>: {}", prefix.prefix, prefix.help));
        }
        if access.admin {
            out.push_str(&format!("\n{GRANT_USAGE}\n{REVOKE_USAGE}\nperms [user]"));
        } else {
            out.push_str("\nperms: what you may use");
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    NotCommand,
    Prefix {
        handler: String,
        rest: String,
    },
    Help {
        scene: Option<String>,
        command: Option<String>,
    },
    Command {
        scene: String,
        command: String,
        args: Vec<String>,
    },
    /// A scene was named but not one of its commands.
    UnknownCommand {
        scene: String,
        command: Option<String>,
    },
    Admin(Admin),
    /// An admin command with the wrong words: the text says how to write it.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    Grant {
        user: String,
        target: Target,
        until: Until,
    },
    Revoke {
        user: String,
        target: Target,
    },
    Perms {
        user: Option<String>,
    },
}

const GRANT_USAGE: &str = "grant <user> <scene|*> [command] [until YYYY-MM-DD]";
const REVOKE_USAGE: &str = "revoke <user> <scene|*> [command]";

fn parse_target(words: &[&str]) -> Result<Target, ()> {
    match words {
        ["*"] => Ok(Target::Everything),
        [scene] => Ok(Target::Scene(scene.to_lowercase())),
        [scene, command] if *scene != "*" => Ok(Target::Command(
            scene.to_lowercase(),
            command.to_lowercase(),
        )),
        _ => Err(()),
    }
}

fn parse_grant(words: &[&str]) -> Parsed {
    let (words, until) = match words.iter().position(|w| w.eq_ignore_ascii_case("until")) {
        Some(at) => match words.get(at + 1..) {
            Some([date]) => match Until::parse(date) {
                Ok(until) => (&words[..at], until),
                Err(message) => return Parsed::Invalid(format!("{message}\nusage: {GRANT_USAGE}")),
            },
            _ => return Parsed::Invalid(format!("usage: {GRANT_USAGE}")),
        },
        None => (words, Until::Forever),
    };
    let Some((user, target)) = words.split_first() else {
        return Parsed::Invalid(format!("usage: {GRANT_USAGE}"));
    };
    match parse_target(target) {
        Ok(target) => Parsed::Admin(Admin::Grant {
            user: user.to_string(),
            target,
            until,
        }),
        Err(()) => Parsed::Invalid(format!("usage: {GRANT_USAGE}")),
    }
}

fn parse_revoke(words: &[&str]) -> Parsed {
    let Some((user, target)) = words.split_first() else {
        return Parsed::Invalid(format!("usage: {REVOKE_USAGE}"));
    };
    match parse_target(target) {
        Ok(target) => Parsed::Admin(Admin::Revoke {
            user: user.to_string(),
            target,
        }),
        Err(()) => Parsed::Invalid(format!("usage: {REVOKE_USAGE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::Grant;

    fn registry() -> Registry {
        let command = |name: &str, public: bool| CommandInfo {
            name: name.into(),
            usage: format!("roster {name}"),
            help: format!("{name} help"),
            public,
        };
        Registry::new(
            vec![Scene {
                name: "roster".into(),
                description: "Who is on duty".into(),
                commands: vec![command("who", true), command("swap", false)],
            }],
            vec![
                Prefix {
                    prefix: "#".into(),
                    handler: "llm".into(),
                    help: "ask the assistant".into(),
                },
                Prefix {
                    prefix: "##".into(),
                    handler: "llm-long".into(),
                    help: "think harder".into(),
                },
            ],
        )
    }

    fn access(grants: &[(&str, &str, Option<&str>)]) -> Access {
        Access::new(
            false,
            grants
                .iter()
                .map(|(scene, command, expires)| Grant {
                    user: "wechat:a".into(),
                    scene: scene.to_string(),
                    command: command.to_string(),
                    expires_at: expires.map(str::to_string),
                    granted_by: "x".into(),
                })
                .collect(),
            "2026-11-24T00:00:00.000Z",
        )
    }

    #[test]
    fn parses_scene_commands_prefixes_and_plain_text() {
        let r = registry();
        let table: Vec<(&str, Parsed)> = vec![
            (
                "roster who 2026-11-24",
                Parsed::Command {
                    scene: "roster".into(),
                    command: "who".into(),
                    args: vec!["2026-11-24".into()],
                },
            ),
            (
                "  Roster  WHO ",
                Parsed::Command {
                    scene: "roster".into(),
                    command: "who".into(),
                    args: vec![],
                },
            ),
            (
                "roster",
                Parsed::UnknownCommand {
                    scene: "roster".into(),
                    command: None,
                },
            ),
            (
                "roster fly",
                Parsed::UnknownCommand {
                    scene: "roster".into(),
                    command: Some("fly".into()),
                },
            ),
            (
                "#什么是 Rust",
                Parsed::Prefix {
                    handler: "llm".into(),
                    rest: "什么是 Rust".into(),
                },
            ),
            (
                "## plan",
                Parsed::Prefix {
                    handler: "llm-long".into(),
                    rest: "plan".into(),
                },
            ),
            (
                "help roster who",
                Parsed::Help {
                    scene: Some("roster".into()),
                    command: Some("who".into()),
                },
            ),
            ("rosters who", Parsed::NotCommand),
            ("你好", Parsed::NotCommand),
            ("", Parsed::NotCommand),
            (
                "grant 李娜 roster swap until 2026-12-31",
                Parsed::Admin(Admin::Grant {
                    user: "李娜".into(),
                    target: Target::Command("roster".into(), "swap".into()),
                    until: Until::parse("2026-12-31").expect("date"),
                }),
            ),
            (
                "grant 李娜 *",
                Parsed::Admin(Admin::Grant {
                    user: "李娜".into(),
                    target: Target::Everything,
                    until: Until::Forever,
                }),
            ),
            (
                "revoke 李娜 roster",
                Parsed::Admin(Admin::Revoke {
                    user: "李娜".into(),
                    target: Target::Scene("roster".into()),
                }),
            ),
            ("perms", Parsed::Admin(Admin::Perms { user: None })),
        ];
        for (text, expected) in table {
            assert_eq!(r.parse(text), expected, "{text:?}");
        }
        for bad in [
            "grant",
            "grant 李娜",
            "grant 李娜 roster who extra",
            "grant 李娜 roster until",
            "grant 李娜 roster until tomorrow",
            "revoke",
            "grant 李娜 * who",
        ] {
            assert!(matches!(r.parse(bad), Parsed::Invalid(_)), "{bad:?}");
        }
    }

    #[test]
    fn help_shows_only_what_the_asker_may_use() {
        let r = registry();
        let stranger = access(&[]);
        let overview = r.help(&stranger, None, None);
        assert!(overview.contains("roster who:"), "{overview}");
        assert!(!overview.contains("swap"), "{overview}");
        assert!(
            overview.contains("#<text>: ask the assistant"),
            "{overview}"
        );
        assert!(!overview.contains("grant <user>"), "{overview}");

        let granted = access(&[("roster", "swap", None)]);
        assert!(r.help(&granted, None, None).contains("roster who|swap"));
        assert!(
            r.help(&granted, Some("roster"), None)
                .contains("roster swap: swap help")
        );
        assert_eq!(
            r.help(&stranger, Some("roster"), Some("swap")),
            "You may not use roster swap; ask an admin for a grant."
        );
        assert_eq!(
            r.help(&granted, Some("roster"), Some("swap")),
            "roster swap\nswap help"
        );
        assert!(
            r.help(&stranger, Some("nope"), None)
                .starts_with("No scene \"nope\". Scenes: roster.")
        );

        let expired = access(&[("roster", "", Some("2026-11-23T00:00:00.000Z"))]);
        assert!(!r.help(&expired, Some("roster"), None).contains("swap"));
    }
}
