//! Every WeChat resource id the sim puts in its view tree, read from data, never written in
//! code: WeChat renames its obfuscated ids between builds, and a reader shaped by the sim must
//! meet the ids real phones show.
//!
//! - The roles a reader selects on come from the UI map (`ui-maps/wechat-8.0.toml`, or
//!   `SimConfig::ui_map`), the reader's own data.
//! - The views those roles are nested in, which no reader selects on, come from the sim's
//!   layout file (`phone-sim/layouts/wechat-8.0.toml`), copied from the real dumps. It also
//!   holds the few roles the map does not name by id yet; the map wins once it does.

use serde::Deserialize;
use thiserror::Error;

/// The map shipped in the repository; `SimConfig::ui_map` can point at another file.
pub const BUNDLED_MAP: &str = include_str!("../../../ui-maps/wechat-8.0.toml");
/// The structural ids of WeChat 8.0.x, from the real dumps.
pub const BUNDLED_LAYOUT: &str = include_str!("../../layouts/wechat-8.0.toml");

#[derive(Debug, Error)]
pub enum MapError {
    #[error("UI map is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("UI map has no [roles].{0}.id")]
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
    pub time_divider: String,
    pub input: String,
    pub send_button: String,
    pub avatar_suffix: String,
    pub layout: Layout,
}

/// What the layout file holds besides the structural ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FallbackRoles {
    row_avatar: String,
    row_container: String,
    chat_back: String,
}

#[derive(Debug, Clone, Deserialize)]
struct LayoutFile {
    roles: FallbackRoles,
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
    /// The roles from the UI map `text`, the structure from the bundled layout.
    pub fn from_toml(text: &str) -> Result<Self, MapError> {
        Self::from_map_and_layout(text, BUNDLED_LAYOUT)
    }

    pub fn bundled() -> Result<Self, MapError> {
        Self::from_toml(BUNDLED_MAP)
    }

    fn from_map_and_layout(map: &str, layout: &str) -> Result<Self, MapError> {
        let doc: toml::Table = map.parse()?;
        let LayoutFile {
            roles: fallback,
            layout,
        } = toml::from_str(layout).map_err(MapError::Layout)?;
        let roles = doc.get("roles").and_then(|v| v.as_table());
        let map_id = |role: &str| -> Option<String> {
            roles
                .and_then(|r| r.get(role))
                .and_then(|v| v.get("id"))
                .and_then(|v| v.as_str())
                // A full "pkg:id/name" in the map is reduced to the short name we prefix later.
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
        };
        let id = |role: &'static str| map_id(role).ok_or(MapError::Missing(role));
        let avatar_suffix = doc
            .get("avatar")
            .and_then(|a| a.get("desc_suffix"))
            .and_then(|v| v.as_str())
            .unwrap_or("头像")
            .to_string();
        Ok(Ids {
            conversation_list: id("conversation_list")?,
            conversation_row: id("conversation_row")?,
            row_container: map_id("row_container").unwrap_or(fallback.row_container),
            row_avatar: map_id("row_avatar").unwrap_or(fallback.row_avatar),
            row_title: id("row_title")?,
            row_preview: id("row_preview")?,
            row_time: id("row_time")?,
            row_unread_dot: id("row_unread_dot")?,
            row_unread_badge: id("row_unread_badge")?,
            row_muted: id("row_muted")?,
            tab_label: id("tab_label")?,
            tab_unread: id("tab_unread")?,
            chat_back: map_id("chat_back").unwrap_or(fallback.chat_back),
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
    fn roles_the_map_lacks_come_from_the_layout_until_the_map_names_them() {
        let ids = Ids::bundled().expect("bundled map");
        assert_eq!(ids.row_avatar, "a_4");
        assert_eq!(ids.layout.frame.content, "tjb");
        let map = BUNDLED_MAP.replace(
            "[roles]\n",
            "[roles]\nrow_avatar = { id = \"com.tencent.mm:id/new\" }\n",
        );
        assert_eq!(Ids::from_toml(&map).expect("map").row_avatar, "new");
    }

    #[test]
    fn a_layout_with_a_missing_or_unknown_id_is_refused() {
        let missing = BUNDLED_LAYOUT.replace("more_dot = \"bk0\"", "");
        assert!(matches!(
            Ids::from_map_and_layout(BUNDLED_MAP, &missing),
            Err(MapError::Layout(_))
        ));
        let unknown = BUNDLED_LAYOUT.replace("more_dot = ", "more_dott = ");
        assert!(matches!(
            Ids::from_map_and_layout(BUNDLED_MAP, &unknown),
            Err(MapError::Layout(_))
        ));
    }
}
