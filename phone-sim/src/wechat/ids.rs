//! Resource ids of the role nodes, read from the UI map (`ui-maps/wechat-8.0.toml`) as data.
//! Structural ids the map does not name (`tjb`, `bks`, `cj0`, …) are copied from real dumps
//! in [`super::ui`].

use thiserror::Error;

/// The map shipped in the repository; `SimConfig::ui_map` can point at another file.
pub const BUNDLED_MAP: &str = include_str!("../../../ui-maps/wechat-8.0.toml");

#[derive(Debug, Error)]
pub enum MapError {
    #[error("UI map is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("UI map has no [roles].{0}.id")]
    Missing(&'static str),
}

#[derive(Debug, Clone)]
pub struct Ids {
    pub conversation_list: String,
    pub conversation_row: String,
    pub row_title: String,
    pub row_preview: String,
    pub row_time: String,
    pub row_unread_dot: String,
    pub row_unread_badge: String,
    pub row_muted: String,
    pub tab_label: String,
    pub tab_unread: String,
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
}

impl Ids {
    pub fn from_toml(text: &str) -> Result<Self, MapError> {
        let doc: toml::Table = text.parse()?;
        let roles = doc.get("roles").and_then(|v| v.as_table());
        let id = |role: &'static str| -> Result<String, MapError> {
            roles
                .and_then(|r| r.get(role))
                .and_then(|v| v.get("id"))
                .and_then(|v| v.as_str())
                // A full "pkg:id/name" in the map is reduced to the short name we prefix later.
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                .ok_or(MapError::Missing(role))
        };
        let avatar_suffix = doc
            .get("avatar")
            .and_then(|a| a.get("desc_suffix"))
            .and_then(|v| v.as_str())
            .unwrap_or("头像")
            .to_string();
        Ok(Ids {
            conversation_list: id("conversation_list")?,
            conversation_row: id("conversation_row")?,
            row_title: id("row_title")?,
            row_preview: id("row_preview")?,
            row_time: id("row_time")?,
            row_unread_dot: id("row_unread_dot")?,
            row_unread_badge: id("row_unread_badge")?,
            row_muted: id("row_muted")?,
            tab_label: id("tab_label")?,
            tab_unread: id("tab_unread")?,
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
        })
    }

    pub fn bundled() -> Result<Self, MapError> {
        Self::from_toml(BUNDLED_MAP)
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
}
