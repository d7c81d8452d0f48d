//! Every WeChat resource id the sim puts in its view tree, read from data, never written in
//! code: WeChat renames its obfuscated ids between builds, and a reader shaped by the sim must
//! meet the ids real phones show.
//!
//! Which ids depends on the WeChat build the phone runs ([`Build`], picked by version):
//!
//! - 8.0.x (and any version no other build claims, as before builds were told apart): the
//!   roles a reader selects on come from the UI map `ui-maps/wechat-8.0.toml`, the reader's own
//!   data; the views those roles are nested in, which no reader selects on, come from the sim's
//!   layout file `phone-sim/layouts/wechat-8.0.toml`, copied from the real dumps. The layout
//!   also holds the few roles the map does not name by id yet; the map wins once it does.
//! - 6.6.6: every id comes from `phone-sim/layouts/wechat-6.6.6.toml`, the ids public code
//!   reported for that build. The sim does not read that build's UI map, so a reader whose map
//!   disagrees with what was reported fails against the sim.
//!
//! `SimConfig::ui_map` replaces the build's map (its roles win over the layout's).

use serde::Deserialize;
use thiserror::Error;

/// The 8.0.x map shipped in the repository.
pub const BUNDLED_MAP: &str = include_str!("../../../ui-maps/wechat-8.0.toml");
/// The structural ids of WeChat 8.0.x, from the real dumps.
pub const BUNDLED_LAYOUT: &str = include_str!("../../layouts/wechat-8.0.toml");
/// WeChat 6.6.6's ids as public automation code reported them, and the 8.0 structure around them.
pub const LAYOUT_6_6_6: &str = include_str!("../../layouts/wechat-6.6.6.toml");

/// A WeChat build whose ids the sim can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    pub name: &'static str,
    /// Inclusive lower and exclusive upper version bound, compared part by part.
    pub min: [u32; 3],
    pub max: [u32; 3],
    /// Whether the chat's title bar holds the chat's name in a dump. Real 8.0.x dumps leave it
    /// out; 6.6.6's reported chat title (`hn`) is where bots read the name.
    pub title_text: bool,
    /// The UI map the roles come from, if the build takes them from one.
    map: Option<&'static str>,
    layout: &'static str,
}

pub const BUILD_8_0: Build = Build {
    name: "wechat-8.0",
    min: [8, 0, 0],
    max: [8, 1, 0],
    title_text: false,
    map: Some(BUNDLED_MAP),
    layout: BUNDLED_LAYOUT,
};

pub const BUILD_6_6_6: Build = Build {
    name: "wechat-6.6.6",
    min: [6, 6, 6],
    max: [6, 6, 7],
    title_text: true,
    map: None,
    layout: LAYOUT_6_6_6,
};

const BUILDS: [Build; 2] = [BUILD_8_0, BUILD_6_6_6];

impl Build {
    fn covers(&self, version: &str) -> bool {
        let v = super::version_parts(version);
        let part = |i: usize| v.get(i).copied().unwrap_or(0);
        let v = [part(0), part(1), part(2)];
        self.min <= v && v < self.max
    }

    /// The build a version runs; 8.0's for versions no build claims.
    pub fn for_version(version: &str) -> Build {
        BUILDS
            .into_iter()
            .find(|b| b.covers(version))
            .unwrap_or(BUILD_8_0)
    }
}

#[derive(Debug, Error)]
pub enum MapError {
    #[error("UI map is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("neither the UI map's [roles].{0}.id nor the layout's [roles].{0} names role {0}")]
    Missing(&'static str),
    #[error("layout ids are not valid: {0}")]
    Layout(toml::de::Error),
}

#[derive(Debug, Clone)]
pub struct Ids {
    pub conversation_list: String,
    pub conversation_row: String,
    /// The row's only child, holding avatar and text.
    pub row_container: String,
    pub row_avatar: String,
    pub row_title: String,
    pub row_preview: String,
    pub row_time: String,
    pub row_unread_dot: String,
    pub row_unread_badge: String,
    pub row_muted: String,
    pub tab_label: String,
    pub tab_unread: String,
    pub chat_back: String,
    pub chat_title_bar: String,
    pub chat_title: String,
    pub chat_back_unread: String,
    pub message_list: String,
    pub message_row: String,
    pub message_layout: String,
    pub message_text: String,
    pub message_avatar: String,
    pub message_avatar_box: String,
    pub message_sender: String,
    /// The frame around a picture or a sticker.
    pub message_media: String,
    pub time_divider: String,
    pub input: String,
    pub send_button: String,
    pub avatar_suffix: String,
    pub layout: Layout,
}

/// Roles the layout file names itself: the few the 8.0 map lacks, or all of them for a build
/// that takes no map.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutRoles {
    conversation_list: Option<String>,
    conversation_row: Option<String>,
    row_container: Option<String>,
    row_avatar: Option<String>,
    row_title: Option<String>,
    row_preview: Option<String>,
    row_time: Option<String>,
    row_unread_dot: Option<String>,
    row_unread_badge: Option<String>,
    row_muted: Option<String>,
    tab_label: Option<String>,
    tab_unread: Option<String>,
    chat_back: Option<String>,
    chat_title_bar: Option<String>,
    chat_title: Option<String>,
    chat_back_unread: Option<String>,
    message_list: Option<String>,
    message_row: Option<String>,
    message_layout: Option<String>,
    message_text: Option<String>,
    message_avatar: Option<String>,
    message_avatar_box: Option<String>,
    message_sender: Option<String>,
    message_media: Option<String>,
    time_divider: Option<String>,
    input: Option<String>,
    send_button: Option<String>,
    avatar_suffix: Option<String>,
}

impl LayoutRoles {
    fn get(&self, role: &str) -> Option<&String> {
        match role {
            "conversation_list" => self.conversation_list.as_ref(),
            "conversation_row" => self.conversation_row.as_ref(),
            "row_container" => self.row_container.as_ref(),
            "row_avatar" => self.row_avatar.as_ref(),
            "row_title" => self.row_title.as_ref(),
            "row_preview" => self.row_preview.as_ref(),
            "row_time" => self.row_time.as_ref(),
            "row_unread_dot" => self.row_unread_dot.as_ref(),
            "row_unread_badge" => self.row_unread_badge.as_ref(),
            "row_muted" => self.row_muted.as_ref(),
            "tab_label" => self.tab_label.as_ref(),
            "tab_unread" => self.tab_unread.as_ref(),
            "chat_back" => self.chat_back.as_ref(),
            "chat_title_bar" => self.chat_title_bar.as_ref(),
            "chat_title" => self.chat_title.as_ref(),
            "chat_back_unread" => self.chat_back_unread.as_ref(),
            "message_list" => self.message_list.as_ref(),
            "message_row" => self.message_row.as_ref(),
            "message_layout" => self.message_layout.as_ref(),
            "message_text" => self.message_text.as_ref(),
            "message_avatar" => self.message_avatar.as_ref(),
            "message_avatar_box" => self.message_avatar_box.as_ref(),
            "message_sender" => self.message_sender.as_ref(),
            "message_media" => self.message_media.as_ref(),
            "time_divider" => self.time_divider.as_ref(),
            "input" => self.input.as_ref(),
            "send_button" => self.send_button.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct LayoutFile {
    #[serde(default)]
    roles: LayoutRoles,
    #[serde(flatten)]
    layout: Layout,
}

/// The ids of the views WeChat nests its roles in, by the part of the screen they belong to.
/// The layout file's comments say what each view is.
#[derive(Debug, Clone, Deserialize)]
pub struct Layout {
    pub frame: FrameIds,
    pub action_bar: ActionBarIds,
    pub main_screen: MainScreenIds,
    pub list_title_copy: ListTitleCopyIds,
    pub conversation_row: ConversationRowIds,
    pub tab_bar: TabBarIds,
    pub chat: ChatIds,
    pub input_bar: InputBarIds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameIds {
    pub side_strip: String,
    pub side_strip_inner: String,
    pub content: String,
    pub page: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBarIds {
    pub frame: String,
    pub view: String,
    pub title_group: String,
    pub up: String,
    pub actions: String,
    pub actions_inner: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainScreenIds {
    pub frame: String,
    pub root: String,
    pub pages: String,
    pub chats_page: String,
    pub list_container: String,
    pub action_bar_content: String,
    pub search: String,
    pub more: String,
    pub action_icon: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListTitleCopyIds {
    pub frame: String,
    pub bar_frame: String,
    pub bar_background: String,
    pub bar_content: String,
    pub handle: String,
    pub search: String,
    pub plus: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationRowIds {
    pub title_line: String,
    pub title_box: String,
    pub separator: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabBarIds {
    pub bar: String,
    pub tab: String,
    pub icon_and_label: String,
    pub icon: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatIds {
    pub frame: String,
    pub focus_frame: String,
    pub root: String,
    pub action_bar_content: String,
    pub more_info: String,
    pub below_action_bar: String,
    pub below_action_bar_background: String,
    pub messages_and_input: String,
    pub message_layers: String,
    pub first_overlay: String,
    pub second_overlay: String,
    pub message_list_frame: String,
    pub image_layer: String,
    pub image_layer_view: String,
    pub top_right_chip: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputBarIds {
    pub frame: String,
    pub container: String,
    pub column: String,
    pub band: String,
    pub band_inner: String,
    pub controls: String,
    pub voice_toggle: String,
    pub field_column: String,
    pub field_group: String,
    pub field_scroll: String,
    pub field_box: String,
    pub voice_and_dictate: String,
    pub dictate_frame: String,
    pub dictate: String,
    pub emoji: String,
    pub more_slot: String,
    pub more: String,
    pub more_dot: String,
}

impl Ids {
    /// The roles from the UI map `text`, the structure from the 8.0 layout.
    pub fn from_toml(text: &str) -> Result<Self, MapError> {
        Self::from_map_and_layout(Some(text), BUNDLED_LAYOUT)
    }

    /// WeChat 8.0.x's ids.
    pub fn bundled() -> Result<Self, MapError> {
        Self::for_build(BUILD_8_0, None)
    }

    /// The ids of the build `version` runs; `map` replaces that build's UI map.
    pub fn for_version(version: &str, map: Option<&str>) -> Result<Self, MapError> {
        Self::for_build(Build::for_version(version), map)
    }

    pub fn for_build(build: Build, map: Option<&str>) -> Result<Self, MapError> {
        Self::from_map_and_layout(map.or(build.map), build.layout)
    }

    fn from_map_and_layout(map: Option<&str>, layout: &str) -> Result<Self, MapError> {
        let doc: toml::Table = match map {
            Some(text) => text.parse()?,
            None => toml::Table::new(),
        };
        let LayoutFile { roles: own, layout } = toml::from_str(layout).map_err(MapError::Layout)?;
        let roles = doc.get("roles").and_then(|v| v.as_table());
        let map_id = |role: &str| -> Option<String> {
            roles
                .and_then(|r| r.get(role))
                .and_then(|v| v.get("id"))
                .and_then(|v| v.as_str())
                // A full "pkg:id/name" in the map is reduced to the short name we prefix later.
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
        };
        let id = |role: &'static str| {
            map_id(role)
                .or_else(|| own.get(role).cloned())
                .ok_or(MapError::Missing(role))
        };
        let avatar_suffix = doc
            .get("avatar")
            .and_then(|a| a.get("desc_suffix"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| own.avatar_suffix.clone())
            .unwrap_or_else(|| "头像".to_string());
        Ok(Ids {
            conversation_list: id("conversation_list")?,
            conversation_row: id("conversation_row")?,
            row_container: id("row_container")?,
            row_avatar: id("row_avatar")?,
            row_title: id("row_title")?,
            row_preview: id("row_preview")?,
            row_time: id("row_time")?,
            row_unread_dot: id("row_unread_dot")?,
            row_unread_badge: id("row_unread_badge")?,
            row_muted: id("row_muted")?,
            tab_label: id("tab_label")?,
            tab_unread: id("tab_unread")?,
            chat_back: id("chat_back")?,
            chat_title_bar: id("chat_title_bar")?,
            chat_title: id("chat_title")?,
            chat_back_unread: id("chat_back_unread")?,
            message_list: id("message_list")?,
            message_row: id("message_row")?,
            message_layout: id("message_layout")?,
            message_text: id("message_text")?,
            message_avatar: id("message_avatar")?,
            message_avatar_box: id("message_avatar_box")?,
            message_sender: id("message_sender")?,
            message_media: id("message_media")?,
            time_divider: id("time_divider")?,
            input: id("input")?,
            send_button: id("send_button")?,
            avatar_suffix,
            layout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_map_has_every_role() {
        let ids = Ids::bundled().expect("bundled map");
        assert_eq!(ids.conversation_list, "j8g");
        assert_eq!(ids.input, "bkk");
        assert_eq!(ids.avatar_suffix, "头像");
    }

    #[test]
    fn roles_come_from_the_map_where_it_names_them() {
        let ids = Ids::bundled().expect("bundled map");
        assert_eq!(ids.row_avatar, "a_4");
        assert_eq!(ids.layout.frame.content, "tjb");
        // The map names the row avatar now; a map that renames it wins over the layout.
        let named = BUNDLED_MAP
            .lines()
            .find(|l| l.starts_with("row_avatar"))
            .expect("the 8.0 map names row_avatar");
        let map = BUNDLED_MAP.replace(named, "row_avatar = { id = \"com.tencent.mm:id/new\" }");
        assert_eq!(Ids::from_toml(&map).expect("map").row_avatar, "new");
    }

    #[test]
    fn a_layout_with_a_missing_or_unknown_id_is_refused() {
        let missing = BUNDLED_LAYOUT.replace("more_dot = \"bk0\"", "");
        assert!(matches!(
            Ids::from_map_and_layout(Some(BUNDLED_MAP), &missing),
            Err(MapError::Layout(_))
        ));
        let unknown = BUNDLED_LAYOUT.replace("more_dot = ", "more_dott = ");
        assert!(matches!(
            Ids::from_map_and_layout(Some(BUNDLED_MAP), &unknown),
            Err(MapError::Layout(_))
        ));
    }

    #[test]
    fn the_version_picks_the_build() {
        assert_eq!(Build::for_version("6.6.6").name, "wechat-6.6.6");
        assert_eq!(Build::for_version("6.6.6.1320").name, "wechat-6.6.6");
        assert_eq!(Build::for_version("6.6.7").name, "wechat-8.0");
        assert_eq!(Build::for_version("6.6.5").name, "wechat-8.0");
        assert_eq!(Build::for_version("8.0.74").name, "wechat-8.0");
        let old = Ids::for_version("6.6.6", None).expect("6.6.6 ids");
        assert_eq!(
            (
                old.conversation_list.as_str(),
                old.row_title.as_str(),
                old.input.as_str()
            ),
            ("big", "apv", "aaa")
        );
        assert_eq!(old.layout.frame.content, "tjb", "8.0's structure, assumed");
        let new = Ids::for_version("8.0.50", None).expect("8.0 ids");
        assert_eq!(new.conversation_list, "j8g");
        // A map given on the command line wins over the build's own roles.
        let map = "[roles]\nrow_title = { id = \"com.tencent.mm:id/zzz\" }\n";
        assert_eq!(
            Ids::for_version("6.6.6", Some(map)).expect("ids").row_title,
            "zzz"
        );
    }

    /// The reader's 6.6.6 map and the sim's 6.6.6 layout come from the same public reports:
    /// every id the map names must be the layout's id for that role.
    #[test]
    fn the_6_6_6_map_and_layout_agree() {
        let map: toml::Table = include_str!("../../../ui-maps/wechat-6.6.6.toml")
            .parse()
            .expect("map");
        let layout: LayoutFile = toml::from_str(LAYOUT_6_6_6).expect("layout");
        let roles = map
            .get("roles")
            .and_then(|r| r.as_table())
            .expect("[roles]");
        let mut checked = 0;
        for (role, selector) in roles {
            let Some(id) = selector.get("id").and_then(|v| v.as_str()) else {
                continue;
            };
            if id.starts_with("android:") {
                continue;
            }
            assert_eq!(
                layout.roles.get(role).map(String::as_str),
                Some(id),
                "{role}"
            );
            checked += 1;
        }
        assert_eq!(checked, 11);
    }

    #[test]
    fn reported_6_6_6_ids_do_not_collide_with_the_assumed_structure() {
        let reported = [
            "big", "apt", "apv", "apx", "apw", "jj", "c48", "jz", "hn", "aaa", "aag",
        ];
        let structural: Vec<String> = LAYOUT_6_6_6
            .split("[frame]")
            .nth(1)
            .expect("structure after the roles")
            .lines()
            .filter_map(|l| l.split_once('=').map(|(_, v)| v))
            .filter_map(|v| v.split('"').nth(1).map(str::to_string))
            .collect();
        assert!(structural.len() > 50, "{structural:?}");
        for id in reported {
            assert!(!structural.iter().any(|s| s == id), "{id}");
        }
    }

    /// The maps in ui-maps/ cover disjoint version ranges, so a version picks one map.
    #[test]
    fn ui_map_ranges_do_not_overlap() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui-maps");
        let mut ranges = Vec::new();
        for entry in std::fs::read_dir(dir).expect("ui-maps/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let doc: toml::Table = std::fs::read_to_string(&path)
                .expect("readable")
                .parse()
                .expect("TOML");
            let bound = |k: &str| {
                let v = doc["map"][k].as_str().expect("version string");
                let p = crate::wechat::version_parts(v);
                (0..4)
                    .map(|i| p.get(i).copied().unwrap_or(0))
                    .collect::<Vec<_>>()
            };
            ranges.push((path, bound("min_version"), bound("max_version")));
        }
        assert!(ranges.len() >= 3);
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                assert!(a.2 <= b.1 || b.2 <= a.1, "{:?} overlaps {:?}", a.0, b.0);
            }
        }
    }
}
