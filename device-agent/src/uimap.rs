//! UI maps: which node plays which role on a given WeChat version.
//!
//! WeChat obfuscates its resource ids and renames them between builds, so the ids live in
//! TOML files under `ui-maps/`, one per version range, and the reader only ever asks for a
//! role ("row_title"), never for an id.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dump::Node;

#[derive(Debug, thiserror::Error)]
pub enum UiMapError {
    #[error("cannot read UI map {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("UI map {path} is invalid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "no UI map in {dir} covers WeChat {version}; known ranges: {known}. Save the conversation list and a chat with `tapwire dump --out dumps`, then draft a map with `tapwire map draft --from dumps --out {dir}/wechat-{version}.toml`"
    )]
    UnknownVersion {
        version: Version,
        dir: PathBuf,
        known: String,
    },
    #[error("{0:?} is not a version number (expected e.g. 8.0.50)")]
    BadVersion(String),
}

/// A dotted version such as `8.0.50`, compared part by part as numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(Vec<u32>);

impl Version {
    pub fn parse(text: &str) -> Result<Version, UiMapError> {
        let parts: Result<Vec<u32>, _> = text.trim().split('.').map(str::parse).collect();
        match parts {
            Ok(parts) if !parts.is_empty() => Ok(Version(parts)),
            _ => Err(UiMapError::BadVersion(text.to_string())),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// Matches a node when every field it names matches.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// `name` (after `:id/`) or a full `package:id/name`.
    pub id: Option<String>,
    pub class: Option<String>,
    pub text: Option<String>,
    pub desc: Option<String>,
}

impl Selector {
    pub fn matches(&self, node: &Node) -> bool {
        if let Some(id) = &self.id {
            let hit = if id.contains(":id/") {
                &*node.resource_id == id.as_str()
            } else {
                node.resource_id.contains(":id/") && node.short_id() == id
            };
            if !hit {
                return false;
            }
        }
        self.class.as_deref().is_none_or(|c| &*node.class == c)
            && self.text.as_deref().is_none_or(|t| &*node.text == t)
            && self
                .desc
                .as_deref()
                .is_none_or(|d| &*node.content_desc == d)
    }
}

/// A role may be one selector or a list of alternatives.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RoleSelector {
    One(Selector),
    Any(Vec<Selector>),
}

impl RoleSelector {
    pub fn matches(&self, node: &Node) -> bool {
        match self {
            RoleSelector::One(selector) => selector.matches(node),
            RoleSelector::Any(selectors) => selectors.iter().any(|s| s.matches(node)),
        }
    }
}

/// Every role the reader asks for. A map may leave a role out when that WeChat build has
/// no such node; the reader then reports the fact as unknown rather than guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    ScreenTitle,
    ConversationList,
    ConversationRow,
    /// The row's only child, which holds the avatar and the text lines.
    RowContainer,
    RowTitle,
    RowPreview,
    RowTime,
    /// The chat's picture at the row's left; the unread dot sits on its top-right corner.
    RowAvatar,
    RowUnreadDot,
    RowUnreadBadge,
    RowMuted,
    TabLabel,
    TabUnread,
    ChatTitleBar,
    ChatTitle,
    ChatBack,
    ChatBackUnread,
    MessageList,
    MessageRow,
    MessageLayout,
    MessageText,
    MessageAvatar,
    MessageAvatarBox,
    MessageSender,
    TimeDivider,
    MessageMedia,
    MessageFileName,
    Input,
    SendButton,
    DialogButton,
    DialogDismiss,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::ScreenTitle,
        Role::ConversationList,
        Role::ConversationRow,
        Role::RowContainer,
        Role::RowTitle,
        Role::RowPreview,
        Role::RowTime,
        Role::RowAvatar,
        Role::RowUnreadDot,
        Role::RowUnreadBadge,
        Role::RowMuted,
        Role::TabLabel,
        Role::TabUnread,
        Role::ChatTitleBar,
        Role::ChatTitle,
        Role::ChatBack,
        Role::ChatBackUnread,
        Role::MessageList,
        Role::MessageRow,
        Role::MessageLayout,
        Role::MessageText,
        Role::MessageAvatar,
        Role::MessageAvatarBox,
        Role::MessageSender,
        Role::TimeDivider,
        Role::MessageMedia,
        Role::MessageFileName,
        Role::Input,
        Role::SendButton,
        Role::DialogButton,
        Role::DialogDismiss,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Role::ScreenTitle => "screen_title",
            Role::ConversationList => "conversation_list",
            Role::ConversationRow => "conversation_row",
            Role::RowContainer => "row_container",
            Role::RowTitle => "row_title",
            Role::RowPreview => "row_preview",
            Role::RowTime => "row_time",
            Role::RowAvatar => "row_avatar",
            Role::RowUnreadDot => "row_unread_dot",
            Role::RowUnreadBadge => "row_unread_badge",
            Role::RowMuted => "row_muted",
            Role::TabLabel => "tab_label",
            Role::TabUnread => "tab_unread",
            Role::ChatTitleBar => "chat_title_bar",
            Role::ChatTitle => "chat_title",
            Role::ChatBack => "chat_back",
            Role::ChatBackUnread => "chat_back_unread",
            Role::MessageList => "message_list",
            Role::MessageRow => "message_row",
            Role::MessageLayout => "message_layout",
            Role::MessageText => "message_text",
            Role::MessageAvatar => "message_avatar",
            Role::MessageAvatarBox => "message_avatar_box",
            Role::MessageSender => "message_sender",
            Role::TimeDivider => "time_divider",
            Role::MessageMedia => "message_media",
            Role::MessageFileName => "message_file_name",
            Role::Input => "input",
            Role::SendButton => "send_button",
            Role::DialogButton => "dialog_button",
            Role::DialogDismiss => "dialog_dismiss",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    map: MapHeader,
    roles: BTreeMap<String, RoleSelector>,
    #[serde(default)]
    avatar: AvatarConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapHeader {
    name: String,
    package: String,
    min_version: String,
    max_version: String,
    hidden_tree_from: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AvatarConfig {
    /// content-desc of an avatar is "<display name><suffix>".
    #[serde(default)]
    pub desc_suffix: String,
}

/// One loaded map: the selectors for one WeChat version range.
#[derive(Debug, Clone)]
pub struct UiMap {
    pub name: String,
    pub package: String,
    pub min_version: Version,
    pub max_version: Version,
    pub hidden_tree_from: Option<Version>,
    pub avatar: AvatarConfig,
    pub source: PathBuf,
    roles: Vec<Option<RoleSelector>>,
}

impl UiMap {
    pub fn from_toml(text: &str, source: &Path) -> Result<UiMap, UiMapError> {
        let invalid = |message: String| UiMapError::Invalid {
            path: source.to_path_buf(),
            message,
        };
        let file: MapFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut roles = vec![None; Role::ALL.len()];
        for (key, selector) in file.roles {
            let Some(index) = Role::ALL.iter().position(|r| r.key() == key) else {
                return Err(invalid(format!("unknown role `{key}`")));
            };
            roles[index] = Some(selector);
        }
        let version = |v: &str| Version::parse(v).map_err(|e| invalid(e.to_string()));
        Ok(UiMap {
            name: file.map.name,
            package: file.map.package,
            min_version: version(&file.map.min_version)?,
            max_version: version(&file.map.max_version)?,
            hidden_tree_from: file
                .map
                .hidden_tree_from
                .as_deref()
                .map(version)
                .transpose()?,
            avatar: file.avatar,
            source: source.to_path_buf(),
            roles,
        })
    }

    pub fn load(path: &Path) -> Result<UiMap, UiMapError> {
        let text = std::fs::read_to_string(path).map_err(|source| UiMapError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        UiMap::from_toml(&text, path)
    }

    pub fn covers(&self, version: &Version) -> bool {
        *version >= self.min_version && *version < self.max_version
    }

    pub fn selector(&self, role: Role) -> Option<&RoleSelector> {
        let index = Role::ALL.iter().position(|r| *r == role)?;
        self.roles[index].as_ref()
    }

    pub fn has(&self, role: Role) -> bool {
        self.selector(role).is_some()
    }

    /// Whether `node` plays `role`; always false for a role this map does not define.
    pub fn is(&self, role: Role, node: &Node) -> bool {
        self.selector(role).is_some_and(|s| s.matches(node))
    }
}

/// All maps found in a directory.
#[derive(Debug, Clone, Default)]
pub struct UiMaps {
    dir: PathBuf,
    maps: Vec<UiMap>,
}

impl UiMaps {
    pub fn load_dir(dir: &Path) -> Result<UiMaps, UiMapError> {
        let entries = std::fs::read_dir(dir).map_err(|source| UiMapError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        let maps = paths
            .iter()
            .map(|p| UiMap::load(p))
            .collect::<Result<_, _>>()?;
        Ok(UiMaps {
            dir: dir.to_path_buf(),
            maps,
        })
    }

    pub fn maps(&self) -> &[UiMap] {
        &self.maps
    }

    pub fn for_version(&self, version: &Version) -> Result<&UiMap, UiMapError> {
        self.maps
            .iter()
            .find(|m| m.covers(version))
            .ok_or_else(|| UiMapError::UnknownVersion {
                version: version.clone(),
                dir: self.dir.clone(),
                known: self
                    .maps
                    .iter()
                    .map(|m| format!("{} ({} ≤ v < {})", m.name, m.min_version, m.max_version))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn by_name(&self, name: &str) -> Option<&UiMap> {
        self.maps.iter().find(|m| m.name == name)
    }
}

/// The `ui-maps/` directory: `$TAPWIRE_UI_MAPS`, else next to the executable's project
/// checkout, else `./ui-maps`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TAPWIRE_UI_MAPS") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("ui-maps");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui-maps"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> UiMaps {
        UiMaps::load_dir(&PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ui-maps"
        )))
        .expect("the repository's maps load")
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).expect("version");
        assert!(v("8.0.9") < v("8.0.50"));
        assert!(v("8.0.50") < v("8.1"));
        assert!(Version::parse("8.x").is_err());
    }

    #[test]
    fn picks_the_map_by_version() {
        let maps = maps();
        let v = |s| Version::parse(s).expect("version");
        assert_eq!(
            maps.for_version(&v("8.0.50")).expect("map").name,
            "wechat-8.0"
        );
        assert_eq!(
            maps.for_version(&v("6.7.3")).expect("map").name,
            "wechat-6.7"
        );
        let err = maps.for_version(&v("9.1.0")).unwrap_err().to_string();
        assert!(
            err.contains("9.1.0") && err.contains("tapwire dump"),
            "{err}"
        );
    }

    #[test]
    fn every_role_key_is_known_and_unknown_ones_are_rejected() {
        let err = UiMap::from_toml(
            "[map]\nname='x'\npackage='p'\nmin_version='1'\nmax_version='2'\n[roles]\nrow_titel={id='a'}\n",
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("row_titel") && err.contains("x.toml"), "{err}");
    }

    #[test]
    fn selector_matches_short_and_full_ids() {
        let node = Node {
            resource_id: "com.tencent.mm:id/bkk".into(),
            class: "android.widget.EditText".into(),
            ..Node::default()
        };
        let short = Selector {
            id: Some("bkk".into()),
            class: Some("android.widget.EditText".into()),
            ..Selector::default()
        };
        assert!(short.matches(&node));
        let full = Selector {
            id: Some("com.tencent.mm:id/bkk".into()),
            ..Selector::default()
        };
        assert!(full.matches(&node));
        let wrong_class = Selector {
            id: Some("bkk".into()),
            class: Some("android.widget.FrameLayout".into()),
            ..Selector::default()
        };
        assert!(!wrong_class.matches(&node));
    }
}
