//! Drafting a UI map for a WeChat build that has none, from dumps of that build.
//!
//! WeChat renames its obfuscated resource ids between builds, but some things survive
//! every renaming, and the drafter finds the nodes by them:
//! - words: the bottom tabs' labels (微信 通讯录 发现 我), avatars described as `<name>头像`,
//!   the back arrow's label 返回, the send button's text 发送, and a chat title that repeats
//!   a conversation row's title;
//! - classes: the input box is an `EditText`;
//! - shapes: the conversation list is a parent of repeated full-width rows, each with a title
//!   at the top left, a time on the same line at the right and a preview under the title;
//!   unread marks are small nodes on the avatar's top-right corner or at the row's right end;
//!   a message row holds an avatar at one side; time dividers are short centred lines with a
//!   date or time, and system lines are centred lines without an avatar.
//!
//! Once a node is found its id is read, and every observation (each row, each message, each
//! label) votes for its role's id. The draft keeps, per role, the winning selector and how
//! sure it is (`high`: every observation agrees, `medium`: a majority, or one observation
//! found by a word or a class, `low`: a single geometric guess or a split vote), and says
//! why a role is missing. It never reads an existing map: everything comes from the dumps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::dump::{Dump, Node, NodeId, Rect};
use crate::screen::{TreeVisibility, tree_visibility};
use crate::uimap::{Role, RoleSelector, Selector, UiMap, UiMapError, Version};

/// The bottom tabs of WeChat's main screen, left to right, as a Chinese-language phone shows
/// them. The first one is the conversation list's tab, whose label also starts the list's
/// title (`微信(3)`).
const TAB_LABELS: [&str; 4] = ["微信", "通讯录", "发现", "我"];
/// An avatar's content-desc is `<display name>头像`.
const AVATAR_SUFFIX: &str = "头像";
const BACK_LABEL: &str = "返回";
const SEND_LABEL: &str = "发送";

#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("no dumps to draft a UI map from")]
    NoDumps,
    #[error(
        "neither a conversation list nor a chat with messages was found in {files}; dump the 微信 tab and a chat with messages from both sides (`tapwire dump`) and draft again"
    )]
    NothingRecognised { files: String },
}

/// What the drafter needs besides the dumps.
#[derive(Debug, Clone)]
pub struct DraftOptions {
    /// The WeChat build the dumps came from.
    pub version: Version,
    /// Where the version came from, for the file's comment (`versionName=8.0.50 in x.package.txt`).
    pub version_source: String,
    /// The app's package; only its windows are read.
    pub package: String,
    /// The map's name; `wechat-<version>-draft` when left out.
    pub name: Option<String>,
}

impl DraftOptions {
    pub fn new(version: Version, version_source: impl Into<String>) -> DraftOptions {
        DraftOptions {
            version,
            version_source: version_source.into(),
            package: "com.tencent.mm".into(),
            name: None,
        }
    }
}

/// How sure the drafter is of one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn label(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// What the dumps say about one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Found {
        selector: RoleSelector,
        confidence: Confidence,
        /// One line: the vote (`11 of 11 rows agree`).
        why: String,
        /// More lines worth a reviewer's eye.
        notes: Vec<String>,
    },
    Missing {
        why: String,
    },
}

/// A drafted map: render it with [`Draft::to_toml`], load it with [`Draft::to_map`].
#[derive(Debug, Clone)]
pub struct Draft {
    pub name: String,
    pub package: String,
    pub min_version: String,
    pub max_version: String,
    pub version_source: String,
    /// Set only when a dump of this build came back hidden.
    pub hidden_tree_from: Option<String>,
    /// One line per dump: what the drafter recognised in it.
    pub sources: Vec<String>,
    /// Every role, in [`Role::ALL`] order.
    pub findings: Vec<(Role, Finding)>,
}

impl Draft {
    pub fn finding(&self, role: Role) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, f)| f)
    }

    /// The drafted map, loaded the way `ui-maps/*.toml` are, so a draft that the loader would
    /// refuse never looks usable.
    pub fn to_map(&self) -> Result<UiMap, UiMapError> {
        let source = format!("{}.toml", self.name);
        UiMap::from_toml(&self.to_toml(), Path::new(&source))
    }

    /// The map in the format of `ui-maps/*.toml`, with a comment per role.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# UI map for WeChat {} ({}), DRAFTED by `tapwire map draft` from these dumps:",
            self.min_version, self.package
        );
        for source in &self.sources {
            let _ = writeln!(out, "#   {}", comment_safe(source));
        }
        out.push_str(concat!(
            "#\n",
            "# Each role says how sure the drafter is: high = every observation agrees, medium = a\n",
            "# majority, or one node found by a word or class that survives WeChat's renaming,\n",
            "# low = a single guess from geometry. Check the draft with `tapwire read DUMP --map\n",
            "# THIS_FILE` on more screens of the phone (low roles first), then rename it.\n",
            "# A selector matches a node when every field it names matches.\n",
            "\n[map]\n",
        ));
        let _ = writeln!(out, "name = {}", toml_string(&self.name));
        let _ = writeln!(out, "package = {}", toml_string(&self.package));
        let _ = writeln!(
            out,
            "# The dumps came from WeChat {} ({}).\n\
             # min_version is that build and max_version (exclusive) the next patch, so the draft\n\
             # claims that one build only: WeChat renames ids between builds. Widen the range\n\
             # (e.g. max_version = \"{}\") once the map reads dumps of the neighbouring builds.",
            self.min_version,
            comment_safe(&self.version_source),
            next_minor(&self.min_version),
        );
        let _ = writeln!(out, "min_version = {}", toml_string(&self.min_version));
        let _ = writeln!(out, "max_version = {}", toml_string(&self.max_version));
        if let Some(hidden) = &self.hidden_tree_from {
            out.push_str("# A dump of this build came back as one empty node (the hidden tree).\n");
            let _ = writeln!(out, "hidden_tree_from = {}", toml_string(hidden));
        }
        out.push_str("\n[roles]\n");
        for (role, finding) in &self.findings {
            if let Some(section) = section_before(*role) {
                let _ = writeln!(out, "\n# {section}");
            }
            match finding {
                Finding::Found {
                    selector,
                    confidence,
                    why,
                    notes,
                } => {
                    let _ = writeln!(out, "# {}: {}", confidence.label(), comment_safe(why));
                    for note in notes {
                        let _ = writeln!(out, "#   {}", comment_safe(note));
                    }
                    let _ = writeln!(out, "{} = {}", role.key(), role_selector_toml(selector));
                }
                Finding::Missing { why } => {
                    let _ = writeln!(out, "# missing: {} — {}", role.key(), comment_safe(why));
                }
            }
        }
        out.push_str("\n[avatar]\n# content-desc of an avatar is \"<display name><suffix>\"\n");
        let _ = writeln!(out, "desc_suffix = {}", toml_string(AVATAR_SUFFIX));
        out
    }
}

/// Drafts a map from dumps of one WeChat build; `dumps` pairs each dump with its file name,
/// which the draft's comments cite.
pub fn draft(dumps: &[(String, Dump)], options: &DraftOptions) -> Result<Draft, DraftError> {
    if dumps.is_empty() {
        return Err(DraftError::NoDumps);
    }
    let mut drafter = Drafter::new();
    let screens: Vec<Screen<'_>> = dumps
        .iter()
        .map(|(file, dump)| Screen {
            file,
            dump,
            package: &options.package,
        })
        .collect();
    // Lists first: a chat's title is recognised by a row title from any of the dumps.
    let lists: Vec<Option<ListShape>> = screens
        .iter()
        .map(|screen| drafter.read_list(screen))
        .collect();
    let mut recognised = false;
    for (screen, list) in screens.iter().zip(&lists) {
        let chat = drafter.read_chat(screen, list.as_ref());
        recognised |= list.is_some() || chat.is_some();
        drafter.describe(screen, list.as_ref(), chat.as_ref());
    }
    if !recognised {
        return Err(DraftError::NothingRecognised {
            files: dumps
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let version = options.version.to_string();
    Ok(Draft {
        name: options
            .name
            .clone()
            .unwrap_or_else(|| format!("wechat-{version}-draft")),
        package: options.package.clone(),
        max_version: next_patch(&version),
        hidden_tree_from: drafter.hidden.then(|| version.clone()),
        min_version: version,
        version_source: options.version_source.clone(),
        sources: drafter.sources.clone(),
        findings: drafter.findings(),
    })
}

/// What one observation says a role's selector is; `None` when the node has no id.
type Vote = Option<Selector>;

/// Whether a role's node is found by something that survives renaming (a word, a class) or
/// only by where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Label,
    Shape,
}

/// The votes for one role.
#[derive(Debug, Clone)]
struct Tally {
    /// What one observation is, plural (`rows`, `messages`).
    unit: &'static str,
    signal: Signal,
    /// The most this role may claim however many agree: a guess at what a node means stays
    /// a guess.
    cap: Confidence,
    votes: Vec<Vote>,
    notes: Vec<String>,
}

impl Tally {
    fn new(unit: &'static str, signal: Signal, cap: Confidence) -> Tally {
        Tally {
            unit,
            signal,
            cap,
            votes: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn decide(&self, missing: &str) -> Finding {
        let total = self.votes.len();
        if total == 0 {
            return Finding::Missing {
                why: missing.to_string(),
            };
        }
        let mut counts: Vec<(&Selector, usize)> = Vec::new();
        let mut without_id = 0;
        for vote in &self.votes {
            match vote {
                Some(selector) => match counts.iter_mut().find(|(s, _)| *s == selector) {
                    Some(entry) => entry.1 += 1,
                    None => counts.push((selector, 1)),
                },
                None => without_id += 1,
            }
        }
        // The first selector seen wins a tie: dumps are read in file-name order, so the
        // draft does not change from one run to the next.
        let mut best: Option<(&Selector, usize)> = None;
        for (selector, count) in &counts {
            if best.is_none_or(|(_, b)| *count > b) {
                best = Some((selector, *count));
            }
        }
        let Some((winner, count)) = best else {
            return Finding::Missing {
                why: format!(
                    "{total} {} found, none with a resource id to select by",
                    self.unit
                ),
            };
        };
        let mut others: Vec<String> = counts
            .iter()
            .filter(|(s, _)| *s != winner)
            .map(|(s, n)| format!("{} ×{n}", selector_summary(s)))
            .collect();
        if without_id > 0 {
            others.push(format!("no id ×{without_id}"));
        }
        let (confidence, why) = if total == 1 {
            let confidence = match self.signal {
                Signal::Label => Confidence::Medium,
                Signal::Shape => Confidence::Low,
            };
            (
                confidence,
                format!("one candidate (1 {})", singular(self.unit)),
            )
        } else if count == total {
            (
                Confidence::High,
                format!("{count} of {total} {} agree", self.unit),
            )
        } else if count * 2 > total {
            (
                Confidence::Medium,
                format!(
                    "{count} of {total} {} agree; others: {}",
                    self.unit,
                    others.join(", ")
                ),
            )
        } else {
            (
                Confidence::Low,
                format!(
                    "only {count} of {total} {} agree; others: {}",
                    self.unit,
                    others.join(", ")
                ),
            )
        };
        let mut notes = self.notes.clone();
        if confidence > self.cap {
            notes.push(format!(
                "held at {}: what the node means is a guess from where it sits",
                self.cap.label()
            ));
        }
        Finding::Found {
            selector: RoleSelector::One(winner.clone()),
            confidence: confidence.min(self.cap),
            why,
            notes,
        }
    }
}

/// What one observation of each role is called, how it is found and how sure it may get.
fn tally_for(role: Role) -> Tally {
    use Confidence::*;
    use Signal::*;
    let (unit, signal, cap) = match role {
        Role::ScreenTitle => ("title texts", Label, High),
        Role::ConversationList
        | Role::ConversationRow
        | Role::RowContainer
        | Role::RowTitle
        | Role::RowPreview
        | Role::RowTime
        | Role::RowAvatar => ("rows", Shape, High),
        Role::RowUnreadDot => ("dots", Shape, High),
        Role::RowUnreadBadge => ("badges", Shape, High),
        // An icon at the right end of the preview line is taken for the mute icon; nothing
        // in the dump says what it shows.
        Role::RowMuted => ("icons", Shape, Medium),
        Role::TabLabel => ("tab labels", Label, High),
        Role::TabUnread => ("tab numbers", Shape, High),
        Role::ChatTitleBar => ("title bars", Shape, Low),
        Role::ChatTitle => ("chat titles", Label, High),
        Role::ChatBack => ("back arrows", Label, High),
        Role::ChatBackUnread => ("numbers", Shape, High),
        Role::MessageAvatar | Role::MessageSender => ("messages", Label, High),
        Role::MessageList
        | Role::MessageRow
        | Role::MessageLayout
        | Role::MessageText
        | Role::MessageAvatarBox
        | Role::MessageMedia
        | Role::MessageFileName => ("messages", Shape, High),
        Role::TimeDivider => ("dividers", Shape, High),
        Role::Input => ("input boxes", Label, High),
        Role::SendButton => ("send buttons", Label, High),
        Role::DialogButton | Role::DialogDismiss => ("buttons", Label, High),
    };
    Tally::new(unit, signal, cap)
}

fn singular(unit: &str) -> &str {
    match unit {
        "input boxes" => "input box",
        "rows" => "row",
        "messages" => "message",
        "dots" => "dot",
        "badges" => "badge",
        "icons" => "icon",
        "tab labels" => "tab label",
        "tab numbers" => "tab number",
        "title bars" => "title bar",
        "title texts" => "title text",
        "chat titles" => "chat title",
        "back arrows" => "back arrow",
        "numbers" => "number",
        "dividers" => "divider",
        "send buttons" => "send button",
        "buttons" => "button",
        other => other,
    }
}

/// The votes and notes gathered over all dumps.
struct Drafter {
    tallies: BTreeMap<Role, Tally>,
    /// Centred lines in message lists that are not times: the reader takes them for system
    /// lines when they carry the message text's selector.
    system_lines: Tally,
    /// Every conversation row's title, to recognise a chat's title by.
    row_titles: Vec<String>,
    sources: Vec<String>,
    saw_list: bool,
    saw_chat: bool,
    hidden: bool,
    sides: Sides,
    /// Text in the chat title bar that no row title matched.
    unmatched_titles: Vec<String>,
    empty_title_bars: Vec<String>,
}

#[derive(Debug, Default)]
struct Sides {
    left: usize,
    right: usize,
    /// Messages whose text (or bubble) sits on the other side of the middle than the avatar.
    disagree: usize,
}

impl Drafter {
    fn new() -> Drafter {
        Drafter {
            tallies: Role::ALL.iter().map(|r| (*r, tally_for(*r))).collect(),
            system_lines: Tally::new("system lines", Signal::Shape, Confidence::High),
            row_titles: Vec::new(),
            sources: Vec::new(),
            saw_list: false,
            saw_chat: false,
            hidden: false,
            sides: Sides::default(),
            unmatched_titles: Vec::new(),
            empty_title_bars: Vec::new(),
        }
    }

    fn vote(&mut self, role: Role, vote: Vote) {
        if let Some(tally) = self.tallies.get_mut(&role) {
            tally.votes.push(vote);
        }
    }

    fn note(&mut self, role: Role, note: String) {
        if let Some(tally) = self.tallies.get_mut(&role)
            && !tally.notes.contains(&note)
        {
            tally.notes.push(note);
        }
    }

    /// Finds the conversation list (in the window that holds the bottom tabs) and votes for
    /// the tab and list roles.
    fn read_list(&mut self, screen: &Screen<'_>) -> Option<ListShape> {
        if screen.is_hidden() {
            return None;
        }
        let tabs = screen.tab_bar()?;
        for label in tabs.labels {
            self.vote(Role::TabLabel, screen.id_selector(label));
        }
        let dump = screen.dump;
        for id in dump.subtree(tabs.bar) {
            if is_count(&dump.node(id).text) && !tabs.labels.contains(&id) {
                self.vote(Role::TabUnread, screen.id_selector(id));
            }
        }
        let list = screen.conversation_list(tabs.window)?;
        self.saw_list = true;
        let (list_vote, list_note) = screen.container_selector(list.list);
        if let Some(note) = list_note {
            self.note(Role::ConversationList, note);
        }
        let mut with_text = 0;
        // Rows showing each mark: (dot, number, icon).
        let mut marked = [0; 3];
        for row in &list.rows {
            self.vote(Role::ConversationList, list_vote.clone());
            self.vote(Role::ConversationRow, screen.id_selector(row.row));
            self.vote(Role::RowTitle, screen.id_selector(row.title));
            self.vote(Role::RowTime, screen.id_selector(row.time));
            self.row_titles
                .push(dump.node(row.title).text.trim().to_string());
            if let Some(preview) = row.preview {
                self.vote(Role::RowPreview, screen.id_selector(preview));
                with_text += usize::from(!dump.node(preview).text.is_empty());
            }
            if let Some(container) = row.container {
                self.vote(Role::RowContainer, screen.id_selector(container));
            }
            if let Some(avatar) = row.avatar {
                self.vote(Role::RowAvatar, screen.id_selector(avatar));
            }
            for (slot, (role, node)) in [
                (Role::RowUnreadDot, row.dot),
                (Role::RowUnreadBadge, row.badge),
                (Role::RowMuted, row.mute),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(node) = node {
                    self.vote(role, screen.id_selector(node));
                    marked[slot] += 1;
                }
            }
        }
        let rows = list.rows.len();
        if with_text < rows {
            self.note(
                Role::RowPreview,
                format!(
                    "{}: {with_text} of {rows} previews hold text; the empty ones were placed \
                     by geometry (the line under the title)",
                    screen.file
                ),
            );
        }
        for (count, (role, what)) in marked.into_iter().zip([
            (Role::RowUnreadDot, "dot"),
            (Role::RowUnreadBadge, "number"),
            (Role::RowMuted, "icon"),
        ]) {
            if count > 0 {
                self.note(
                    role,
                    format!("{}: {count} of {rows} rows show the {what}", screen.file),
                );
            }
        }
        for title in screen.screen_titles(&tabs, &list) {
            let text = dump.node(title).text.trim().to_string();
            self.vote(Role::ScreenTitle, screen.id_selector(title));
            self.note(Role::ScreenTitle, format!("reads `{text}`"));
        }
        Some(list)
    }

    /// Finds a chat's message list by its avatars and votes for the chat roles.
    fn read_chat(&mut self, screen: &Screen<'_>, list: Option<&ListShape>) -> Option<ChatShape> {
        if screen.is_hidden() {
            return None;
        }
        let chat = screen.chat(list)?;
        self.saw_chat = true;
        let dump = screen.dump;
        let (list_vote, list_note) = screen.container_selector(chat.list);
        if let Some(note) = list_note {
            self.note(Role::MessageList, note);
        }
        let list_mid = dump.node(chat.list).bounds.center().0;
        let mut bubbles_without_text = 0;
        for message in &chat.messages {
            self.vote(Role::MessageList, list_vote.clone());
            self.vote(Role::MessageRow, screen.id_selector(message.row));
            self.vote(Role::MessageLayout, screen.id_selector(message.layout));
            self.vote(Role::MessageAvatar, screen.id_selector(message.avatar));
            if let Some(avatar_box) = message.avatar_box {
                self.vote(Role::MessageAvatarBox, screen.id_selector(avatar_box));
            }
            if let Some(sender) = message.sender {
                self.vote(Role::MessageSender, screen.id_selector(sender));
            }
            match (message.text, message.bubble) {
                (Some(text), _) => self.vote(Role::MessageText, screen.id_selector(text)),
                (None, Some(bubble)) => {
                    bubbles_without_text += 1;
                    self.vote(Role::MessageText, screen.id_selector(bubble));
                }
                (None, None) => {}
            }
            let avatar_x = dump.node(message.avatar).bounds.center().0;
            let right = avatar_x > list_mid;
            if right {
                self.sides.right += 1;
            } else {
                self.sides.left += 1;
            }
            if let Some(content) = message.text.or(message.bubble) {
                let content_right = dump.node(content).bounds.center().0 > list_mid;
                self.sides.disagree += usize::from(content_right != right);
            }
            if message.layout_holds_divider {
                self.note(
                    Role::MessageLayout,
                    format!(
                        "{}: the layout also holds the row's time divider, which the reader \
                         then skips",
                        screen.file
                    ),
                );
            }
        }
        if bubbles_without_text > 0
            && let Some(tally) = self.tallies.get_mut(&Role::MessageText)
        {
            // A bubble without text is placed, never read: the role cannot claim more.
            tally.cap = Confidence::Low;
            tally.notes.push(format!(
                "{}: {} without text in the dump; the largest node beside the avatar was \
                 taken for the bubble, so the reader can place these messages but not read them",
                screen.file,
                count(bubbles_without_text, "bubble")
            ));
        }
        for divider in &chat.dividers {
            self.vote(Role::TimeDivider, screen.id_selector(*divider));
        }
        for line in &chat.system_lines {
            self.system_lines.votes.push(screen.id_selector(*line));
        }
        if let Some(back) = chat.back {
            let node = dump.node(back);
            self.vote(
                Role::ChatBack,
                Some(Selector {
                    id: screen.short_or_full_id(node),
                    desc: Some(BACK_LABEL.into()),
                    ..Selector::default()
                }),
            );
        }
        if let Some(badge) = chat.back_badge {
            self.vote(Role::ChatBackUnread, screen.id_selector(badge));
        }
        let named = chat.title_texts.iter().find_map(|id| {
            let text = dump.node(*id).text.trim();
            self.row_titles
                .iter()
                .find(|row| names_row(text, row))
                .map(|row| (*id, text.to_string(), row.clone()))
        });
        match (named, chat.title_texts.first()) {
            (Some((title, text, row)), _) => {
                self.vote(Role::ChatTitle, screen.id_selector(title));
                self.note(
                    Role::ChatTitle,
                    format!("{}: `{text}` names the list row `{row}`", screen.file),
                );
            }
            (None, Some(first)) => {
                let text = dump.node(*first).text.trim();
                self.unmatched_titles
                    .push(format!("{}: `{text}`", screen.file));
            }
            (None, None) => self.empty_title_bars.push(screen.file.to_string()),
        }
        if let Some(bar) = chat.title_bar {
            self.vote(Role::ChatTitleBar, screen.id_selector(bar));
            self.note(
                Role::ChatTitleBar,
                "a centred, empty node in the title bar: the title's place, if WeChat fills it"
                    .into(),
            );
        }
        for input in &chat.inputs {
            let node = dump.node(*input);
            self.vote(
                Role::Input,
                Some(Selector {
                    id: screen.short_or_full_id(node),
                    class: Some(node.class.to_string()),
                    ..Selector::default()
                }),
            );
        }
        for send in &chat.send_buttons {
            let node = dump.node(*send);
            let selector = match screen.short_or_full_id(node) {
                Some(id) => Selector {
                    id: Some(id),
                    ..Selector::default()
                },
                None => Selector {
                    text: Some(SEND_LABEL.into()),
                    ..Selector::default()
                },
            };
            self.vote(Role::SendButton, Some(selector));
        }
        Some(chat)
    }

    fn describe(
        &mut self,
        screen: &Screen<'_>,
        list: Option<&ListShape>,
        chat: Option<&ChatShape>,
    ) {
        let what = if screen.is_hidden() {
            self.hidden = true;
            "skipped: WeChat's tree is hidden (one empty node); turn on a whitelisted \
             accessibility service and dump again"
                .to_string()
        } else {
            let list = list.map(|l| format!("conversation list, {}", count(l.rows.len(), "row")));
            let chat = chat.map(|c| {
                format!(
                    "chat, {}, {}, {}",
                    count(c.messages.len(), "message"),
                    count(c.dividers.len(), "time divider"),
                    count(c.system_lines.len(), "system line")
                )
            });
            match (list, chat) {
                (Some(l), Some(c)) => format!("{l}; a {c} over it"),
                (Some(l), None) => l,
                (None, Some(c)) => c,
                (None, None) => "nothing recognised (no bottom tabs, no avatars `…头像`)".into(),
            }
        };
        self.sources.push(format!("{}: {what}", screen.file));
    }

    /// Every role's finding, in the map's order, after the checks across roles.
    fn findings(&mut self) -> Vec<(Role, Finding)> {
        self.note_sides();
        let mut findings: Vec<(Role, Finding)> = Role::ALL
            .iter()
            .map(|role| {
                let missing = self.missing_reason(*role);
                let finding = self.tallies.get(role).map_or(
                    Finding::Missing {
                        why: missing.clone(),
                    },
                    |t| t.decide(&missing),
                );
                (*role, finding)
            })
            .collect();
        self.merge_system_lines(&mut findings);
        flag_shared_selectors(&mut findings);
        findings
    }

    fn note_sides(&mut self) {
        let Sides {
            left,
            right,
            disagree,
        } = self.sides;
        if left + right == 0 {
            return;
        }
        self.note(
            Role::MessageAvatar,
            format!(
                "sides by the avatar: {left} left (others), {right} right (own); the text's \
                 centre is on the avatar's side in {} of {}",
                left + right - disagree,
                left + right
            ),
        );
        if right == 0 {
            self.note(
                Role::MessageAvatar,
                "no own message (avatar at the right) in these dumps: own messages are \
                 unchecked; dump a chat where you wrote too"
                    .into(),
            );
        }
        if left == 0 {
            self.note(
                Role::MessageAvatar,
                "no message from others in these dumps: their side is unchecked".into(),
            );
        }
    }

    /// System lines reuse the message text's id in the builds seen so far; when they do not,
    /// the message text role names both, so the reader still reads them (as centre lines,
    /// since they sit outside any message layout).
    fn merge_system_lines(&self, findings: &mut [(Role, Finding)]) {
        let Finding::Found {
            selector: RoleSelector::One(system),
            ..
        } = self.system_lines.decide("")
        else {
            return;
        };
        let lines = self.system_lines.votes.len();
        let Some((
            _,
            Finding::Found {
                selector, notes, ..
            },
        )) = findings.iter_mut().find(|(r, _)| *r == Role::MessageText)
        else {
            return;
        };
        let RoleSelector::One(text) = selector.clone() else {
            return;
        };
        if text == system {
            notes.push(format!(
                "system lines ({lines}, centred, no avatar) use this selector too; the reader \
                 tells them by the missing layout"
            ));
        } else {
            notes.push(format!(
                "system lines ({lines}) use {}, added as an alternative",
                selector_summary(&system)
            ));
            *selector = RoleSelector::Any(vec![text, system]);
        }
    }

    fn missing_reason(&self, role: Role) -> String {
        let no_list = "no conversation list among the dumps (dump the 微信 tab, where the \
                       bottom tabs 微信 通讯录 发现 我 show)";
        let no_chat = "no chat with messages among the dumps (dump a chat with messages from \
                       both sides)";
        let list_role = matches!(
            role,
            Role::ScreenTitle
                | Role::ConversationList
                | Role::ConversationRow
                | Role::RowContainer
                | Role::RowTitle
                | Role::RowPreview
                | Role::RowTime
                | Role::RowAvatar
                | Role::RowUnreadDot
                | Role::RowUnreadBadge
                | Role::RowMuted
        );
        let chat_role = matches!(
            role,
            Role::ChatTitleBar
                | Role::ChatTitle
                | Role::ChatBack
                | Role::ChatBackUnread
                | Role::MessageList
                | Role::MessageRow
                | Role::MessageLayout
                | Role::MessageText
                | Role::MessageAvatar
                | Role::MessageAvatarBox
                | Role::MessageSender
                | Role::TimeDivider
                | Role::Input
                | Role::SendButton
        );
        if list_role && !self.saw_list {
            return no_list.into();
        }
        if chat_role && !self.saw_chat {
            return no_chat.into();
        }
        match role {
            Role::ScreenTitle => "no text starting with 微信 in the list's title bar".into(),
            Role::RowContainer => {
                "the rows hold their parts directly (no single inner container)".into()
            }
            Role::RowPreview => "no line under the row titles".into(),
            Role::RowAvatar => "no square picture at the rows' left".into(),
            Role::RowUnreadDot => {
                "no small mark without text on any row's avatar corner (dump the list while a \
                 muted chat has unread messages)"
                    .into()
            }
            Role::RowUnreadBadge => {
                "no row shows an unread number (dump the list while a chat has unread messages)"
                    .into()
            }
            Role::RowMuted => "no icon at the right end of any row's preview line".into(),
            Role::TabLabel => "no bottom tabs 微信 通讯录 发现 我 in any dump".into(),
            Role::TabUnread => "no number on any bottom tab".into(),
            Role::ChatTitleBar => "no centred, empty node in the chat's title bar".into(),
            Role::ChatTitle => {
                let mut why = String::new();
                if !self.empty_title_bars.is_empty() {
                    let _ = write!(
                        why,
                        "the title bar holds no text in {}",
                        self.empty_title_bars.join(", ")
                    );
                }
                if !self.unmatched_titles.is_empty() {
                    if !why.is_empty() {
                        why.push_str("; ");
                    }
                    let _ = write!(
                        why,
                        "title bar text matches no row of the list dumps: {} (dump the list \
                         with that chat's row in view)",
                        self.unmatched_titles.join(", ")
                    );
                }
                if why.is_empty() {
                    why.push_str("no back arrow 返回 to find the title bar by");
                }
                why.push_str(
                    "; the reader then knows the chat by the row tapped or the notification",
                );
                why
            }
            Role::ChatBack => "no node described 返回 above the message list".into(),
            Role::ChatBackUnread => {
                "no number beside the back arrow (it counts other chats' unread messages)".into()
            }
            Role::MessageAvatarBox => "the avatars have no small frame of their own".into(),
            Role::MessageSender => {
                "no name line repeats an avatar's name (private chats show none; dump a group \
                 chat)"
                    .into()
            }
            Role::MessageText => "no text or bubble beside the avatars".into(),
            Role::TimeDivider => "no centred date or time line in the message list".into(),
            Role::MessageMedia | Role::MessageFileName => {
                "the drafter does not look for images or files; add the id from a dump of a \
                 chat that shows one"
                    .into()
            }
            Role::Input => "no EditText in the chat".into(),
            Role::SendButton => {
                "no 发送 button: WeChat shows it only while the input holds text; type \
                 something before dumping the chat"
                    .into()
            }
            Role::DialogButton | Role::DialogDismiss => {
                "the drafter does not look for dialogs; the other maps use \
                 { class = \"android.widget.Button\" } and texts such as 取消, which do not \
                 depend on the build"
                    .into()
            }
            _ => "no node found".into(),
        }
    }
}

/// Two roles with one selector would make the reader take the same node for both: say so,
/// and hold both at low.
fn flag_shared_selectors(findings: &mut [(Role, Finding)]) {
    let selectors: Vec<(Role, RoleSelector)> = findings
        .iter()
        .filter_map(|(role, f)| match f {
            Finding::Found { selector, .. } => Some((*role, selector.clone())),
            Finding::Missing { .. } => None,
        })
        .collect();
    for (role, finding) in findings.iter_mut() {
        let Finding::Found {
            selector,
            confidence,
            notes,
            ..
        } = finding
        else {
            continue;
        };
        for (other, other_selector) in &selectors {
            if other != role && other_selector == selector {
                *confidence = Confidence::Low;
                notes.push(format!(
                    "same selector as `{}`: the reader cannot tell them apart",
                    other.key()
                ));
            }
        }
    }
}

/// One dump, seen through the app's windows.
struct Screen<'a> {
    file: &'a str,
    dump: &'a Dump,
    package: &'a str,
}

struct TabBar {
    /// 微信 通讯录 发现 我, left to right.
    labels: [NodeId; 4],
    /// The smallest node holding all four labels.
    bar: NodeId,
    window: NodeId,
}

#[derive(Debug)]
struct RowShape {
    row: NodeId,
    title: NodeId,
    time: NodeId,
    preview: Option<NodeId>,
    avatar: Option<NodeId>,
    container: Option<NodeId>,
    dot: Option<NodeId>,
    badge: Option<NodeId>,
    mute: Option<NodeId>,
}

#[derive(Debug)]
struct ListShape {
    list: NodeId,
    rows: Vec<RowShape>,
}

#[derive(Debug)]
struct MessageShape {
    row: NodeId,
    layout: NodeId,
    avatar: NodeId,
    avatar_box: Option<NodeId>,
    sender: Option<NodeId>,
    text: Option<NodeId>,
    /// Where the content sits when it has no text (6.x bubbles are empty views).
    bubble: Option<NodeId>,
    layout_holds_divider: bool,
}

#[derive(Debug)]
struct ChatShape {
    list: NodeId,
    messages: Vec<MessageShape>,
    dividers: Vec<NodeId>,
    system_lines: Vec<NodeId>,
    back: Option<NodeId>,
    back_badge: Option<NodeId>,
    /// Texts in the title bar, left to right; the chat's title is the one naming a row.
    title_texts: Vec<NodeId>,
    title_bar: Option<NodeId>,
    inputs: Vec<NodeId>,
    send_buttons: Vec<NodeId>,
}

impl Screen<'_> {
    fn node(&self, id: NodeId) -> &Node {
        self.dump.node(id)
    }

    fn bounds(&self, id: NodeId) -> Rect {
        self.dump.node(id).bounds
    }

    fn app_windows(&self) -> Vec<NodeId> {
        self.dump
            .windows()
            .iter()
            .copied()
            .filter(|w| *self.node(*w).package == *self.package)
            .collect()
    }

    /// WeChat ≥ 8.0.55 without a whitelisted accessibility service: one empty node.
    fn is_hidden(&self) -> bool {
        tree_visibility(self.dump, self.package) == TreeVisibility::Hidden
    }

    /// Every node of the app's windows.
    fn app_nodes(&self) -> Vec<NodeId> {
        self.app_windows()
            .into_iter()
            .flat_map(|w| self.dump.subtree(w))
            .collect()
    }

    /// The id as a map writes it: the short name for the app's own ids (`bkk`), the whole id
    /// for the system's (`android:id/text1`), whose names would otherwise be ambiguous.
    fn short_or_full_id(&self, node: &Node) -> Option<String> {
        let id = &*node.resource_id;
        if id.is_empty() {
            return None;
        }
        let own = format!("{}:id/", self.package);
        Some(id.strip_prefix(own.as_str()).unwrap_or(id).to_string())
    }

    fn id_selector(&self, id: NodeId) -> Vote {
        self.short_or_full_id(self.node(id)).map(|id| Selector {
            id: Some(id),
            ..Selector::default()
        })
    }

    /// A list's selector; when the list has no id, the nearest frame around it of the same
    /// bounds that has one (6.x's message ListView sits alone in such a frame).
    fn container_selector(&self, id: NodeId) -> (Vote, Option<String>) {
        if let Some(vote) = self.id_selector(id) {
            return (Some(vote), None);
        }
        let bounds = self.bounds(id);
        for ancestor in self.dump.ancestors(id) {
            if self.bounds(ancestor) != bounds {
                break;
            }
            if let Some(vote) = self.id_selector(ancestor) {
                let note = format!(
                    "{}: the list ({}) has no id; {} is the frame of the same bounds around it",
                    self.file,
                    short_class(&self.node(id).class),
                    selector_summary(&vote)
                );
                return (Some(vote), Some(note));
            }
        }
        (None, None)
    }

    /// The bottom tabs: the four labels on one line, left to right, in one window.
    fn tab_bar(&self) -> Option<TabBar> {
        let nodes = self.app_nodes();
        let with_text = |label: &str| -> Vec<NodeId> {
            nodes
                .iter()
                .copied()
                .filter(|id| self.node(*id).text.trim() == label)
                .collect()
        };
        let candidates: Vec<Vec<NodeId>> = TAB_LABELS.iter().map(|l| with_text(l)).collect();
        for anchor in &candidates[1] {
            let a = self.bounds(*anchor);
            let window = self.dump.window_of(*anchor);
            let on_line = |id: &NodeId| {
                let b = self.bounds(*id);
                self.dump.window_of(*id) == window
                    && (b.center().1 - a.center().1).abs() <= a.height().max(b.height())
            };
            let mut labels = [*anchor; 4];
            let mut complete = true;
            for (slot, ids) in candidates.iter().enumerate() {
                match ids.iter().find(|id| on_line(id)) {
                    Some(id) => labels[slot] = *id,
                    None => complete = false,
                }
            }
            let ordered = labels
                .windows(2)
                .all(|w| self.bounds(w[0]).center().0 < self.bounds(w[1]).center().0);
            if complete && ordered {
                return Some(TabBar {
                    labels,
                    bar: common_ancestor(self.dump, &labels),
                    window,
                });
            }
        }
        None
    }

    /// The parent whose full-width children include the most conversation rows.
    fn conversation_list(&self, window: NodeId) -> Option<ListShape> {
        let mut best: Option<ListShape> = None;
        for parent in self.dump.subtree(window) {
            let node = self.node(parent);
            if node.children.len() < 2 || node.bounds.is_empty() {
                continue;
            }
            let width = node.bounds.width();
            let rows: Vec<RowShape> = node
                .children
                .iter()
                .filter(|c| self.bounds(**c).width() * 10 >= width * 9)
                .filter_map(|c| self.row_shape(*c))
                .collect();
            if rows.len() >= 2 && best.as_ref().is_none_or(|b| rows.len() > b.rows.len()) {
                best = Some(ListShape { list: parent, rows });
            }
        }
        best
    }

    /// A conversation row: a title at the top left (right of the avatar), a time on the same
    /// line at the right, a preview under the title; then the small marks around it.
    fn row_shape(&self, row: NodeId) -> Option<RowShape> {
        let r = self.bounds(row);
        if r.is_empty() {
            return None;
        }
        let nodes: Vec<NodeId> = self
            .dump
            .subtree(row)
            .filter(|id| !self.bounds(*id).is_empty())
            .collect();
        let avatar = nodes
            .iter()
            .copied()
            .filter(|id| {
                let (n, b) = (self.node(*id), self.bounds(*id));
                is_image(n)
                    && n.children.is_empty()
                    && is_squarish(&b)
                    && b.height() * 10 >= r.height() * 4
                    && b.center().0 < r.left + r.width() * 3 / 10
            })
            .max_by_key(|id| area(&self.bounds(*id)));
        let text_left = avatar.map_or(r.left, |a| self.bounds(a).right - r.width() / 50);
        let texts: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|id| {
                !self.node(*id).text.trim().is_empty() && self.bounds(*id).left >= text_left
            })
            .collect();
        let title = texts
            .iter()
            .copied()
            .min_by_key(|id| (self.bounds(*id).top, self.bounds(*id).left))?;
        let tb = self.bounds(title);
        // A long title reaches past the middle; it still starts in the left half.
        if tb.left >= r.center().0 {
            return None;
        }
        let time = texts
            .iter()
            .copied()
            .filter(|id| {
                let b = self.bounds(*id);
                *id != title && overlap_y(&b, &tb) > 0 && b.left >= tb.left + tb.width() / 2
            })
            .max_by_key(|id| self.bounds(*id).right)?;
        let below_title = |b: &Rect| {
            b.top >= tb.bottom - tb.height() / 4 && (b.left - tb.left).abs() <= r.width() / 30
        };
        let preview = texts
            .iter()
            .copied()
            .filter(|id| *id != title && *id != time && below_title(&self.bounds(*id)))
            .min_by_key(|id| self.bounds(*id).top)
            .or_else(|| {
                // An empty preview (`ht5` with text "" in 7 of the 11 real 8.0 rows) is still
                // a node: the leaf on the line under the title.
                nodes
                    .iter()
                    .copied()
                    .filter(|id| {
                        let (n, b) = (self.node(*id), self.bounds(*id));
                        *id != title
                            && *id != time
                            && n.children.is_empty()
                            && !is_image(n)
                            && below_title(&b)
                            && b.height() * 3 >= tb.height()
                            && b.width() * 3 >= r.right - tb.left
                    })
                    .min_by_key(|id| self.bounds(*id).top)
            });
        let container = match self.node(row).children.as_slice() {
            [only] if self.bounds(*only) == r => Some(*only),
            _ => None,
        };
        let mut shape = RowShape {
            row,
            title,
            time,
            preview,
            avatar,
            container,
            dot: None,
            badge: None,
            mute: None,
        };
        self.row_marks(&mut shape, &nodes);
        Some(shape)
    }

    /// Unread marks and the mute icon: small leaves on the avatar's top-right corner or at the
    /// row's right end, below the title line.
    fn row_marks(&self, shape: &mut RowShape, nodes: &[NodeId]) {
        let r = self.bounds(shape.row);
        let tb = self.bounds(shape.title);
        let avatar = shape.avatar.map(|a| self.bounds(a));
        let limit = avatar.map_or(r.height() * 35 / 100, |a| a.width() / 2);
        let taken = [
            Some(shape.title),
            Some(shape.time),
            shape.preview,
            shape.avatar,
        ];
        for id in nodes.iter().copied() {
            let (n, b) = (self.node(id), self.bounds(id));
            if !n.children.is_empty()
                || taken.contains(&Some(id))
                || b.width() > limit
                || b.height() > limit
            {
                continue;
            }
            let on_corner = avatar.is_some_and(|a| {
                let tol = a.width() / 10;
                b.left - tol <= a.right
                    && a.right <= b.right + tol
                    && b.top - tol <= a.top
                    && a.top <= b.bottom + tol
            });
            let at_right_end =
                b.right >= r.right - r.width() * 12 / 100 && b.center().1 > tb.bottom;
            if !on_corner && !at_right_end {
                continue;
            }
            let text = n.text.trim();
            if is_count(text) {
                shape.badge = shape.badge.or(Some(id));
            } else if text.is_empty() && on_corner && (is_image(n) || n.class.ends_with(".View")) {
                shape.dot = shape.dot.or(Some(id));
            } else if text.is_empty() && at_right_end && is_image(n) {
                shape.mute = shape.mute.or(Some(id));
            }
        }
    }

    /// The list's title (`微信(1)`): a text starting with the first tab's label near the
    /// window's top, outside the rows.
    fn screen_titles(&self, tabs: &TabBar, list: &ListShape) -> Vec<NodeId> {
        let window = self.bounds(tabs.window);
        let label = TAB_LABELS[0];
        self.dump
            .subtree(tabs.window)
            .filter(|id| {
                let (n, b) = (self.node(*id), self.bounds(*id));
                n.text.trim().starts_with(label)
                    && !tabs.labels.contains(id)
                    && b.center().1 < window.top + window.height() * 15 / 100
                    && !list
                        .rows
                        .iter()
                        .any(|r| *id == r.row || self.dump.is_within(*id, r.row))
            })
            .collect()
    }

    /// A chat: avatars described `<name>头像` in a scrolling list, outside the conversation
    /// list; the list with the most of them is the message list.
    fn chat(&self, conversations: Option<&ListShape>) -> Option<ChatShape> {
        let in_conversations = |id: NodeId| {
            conversations.is_some_and(|l| id == l.list || self.dump.is_within(id, l.list))
        };
        let avatars: Vec<NodeId> = self
            .app_nodes()
            .into_iter()
            .filter(|id| {
                let desc = &*self.node(*id).content_desc;
                desc.len() > AVATAR_SUFFIX.len()
                    && desc.ends_with(AVATAR_SUFFIX)
                    && !in_conversations(*id)
            })
            .collect();
        let mut lists: Vec<(NodeId, Vec<NodeId>)> = Vec::new();
        for avatar in avatars {
            let Some(list) = self.message_list_of(avatar) else {
                continue;
            };
            match lists.iter_mut().find(|(l, _)| *l == list) {
                Some((_, members)) => members.push(avatar),
                None => lists.push((list, vec![avatar])),
            }
        }
        let (list, avatars) = lists.into_iter().max_by_key(|(_, a)| a.len())?;
        let messages: Vec<MessageShape> = avatars
            .iter()
            .filter_map(|a| self.message_shape(list, *a))
            .collect();
        let (dividers, system_lines) = self.centre_lines(list, &messages);
        let window = self.dump.window_of(list);
        let lb = self.bounds(list);
        let back = self
            .dump
            .subtree(window)
            .filter(|id| {
                self.node(*id).content_desc.trim() == BACK_LABEL
                    && self.bounds(*id).bottom <= lb.top + lb.height() / 20
            })
            .max_by_key(|id| self.bounds(*id).bottom);
        let mut chat = ChatShape {
            list,
            messages,
            dividers,
            system_lines,
            back,
            back_badge: None,
            title_texts: Vec::new(),
            title_bar: None,
            inputs: self
                .dump
                .subtree(window)
                .filter(|id| self.node(*id).class.ends_with("EditText"))
                .collect(),
            send_buttons: self
                .dump
                .subtree(window)
                .filter(|id| self.node(*id).text.trim() == SEND_LABEL)
                .collect(),
        };
        if let Some(back) = back {
            self.title_bar(&mut chat, back);
        }
        Some(chat)
    }

    /// The list an avatar scrolls in: the nearest ancestor of a list class, else the nearest
    /// one of (nearly) the window's width that stacks two or more full-width children.
    fn message_list_of(&self, avatar: NodeId) -> Option<NodeId> {
        let ancestors: Vec<NodeId> = self.dump.ancestors(avatar).collect();
        let by_class = ancestors.iter().copied().find(|id| {
            let class = &*self.node(*id).class;
            class.ends_with("ListView") || class.ends_with("RecyclerView")
        });
        let window_width = self.bounds(self.dump.window_of(avatar)).width();
        by_class.or_else(|| {
            ancestors.iter().copied().find(|id| {
                let b = self.bounds(*id);
                let full_width_children = self
                    .node(*id)
                    .children
                    .iter()
                    .filter(|c| self.bounds(**c).width() * 10 >= b.width() * 9)
                    .count();
                b.width() * 10 >= window_width * 9 && full_width_children >= 2
            })
        })
    }

    fn message_shape(&self, list: NodeId, avatar: NodeId) -> Option<MessageShape> {
        let lb = self.bounds(list);
        let chain: Vec<NodeId> = std::iter::once(avatar)
            .chain(self.dump.ancestors(avatar))
            .take_while(|id| *id != list)
            .collect();
        let row = *chain.last()?;
        // The message layout spans the row's width (avatar, name and bubble); the deepest such
        // node leaves the row's time divider outside it.
        let layout = chain
            .iter()
            .copied()
            .find(|id| self.bounds(*id).width() * 10 >= lb.width() * 9)
            .unwrap_or(row);
        let ab = self.bounds(avatar);
        let avatar_box = self
            .node(avatar)
            .parent
            .filter(|p| *p != layout && area(&self.bounds(*p)) * 10 <= area(&ab) * 16);
        let outside = avatar_box.unwrap_or(avatar);
        let in_layout: Vec<NodeId> = self
            .dump
            .descendants(layout)
            .filter(|id| *id != outside && !self.dump.is_within(*id, outside))
            .collect();
        let name = self
            .node(avatar)
            .content_desc
            .strip_suffix(AVATAR_SUFFIX)
            .unwrap_or_default()
            .trim()
            .to_string();
        let sender = in_layout
            .iter()
            .copied()
            .find(|id| !name.is_empty() && self.node(*id).text.trim() == name);
        let text = in_layout
            .iter()
            .copied()
            .filter(|id| Some(*id) != sender && !self.node(*id).text.trim().is_empty())
            .max_by_key(|id| area(&self.bounds(*id)));
        let bubble = match text {
            Some(_) => None,
            None => in_layout
                .iter()
                .copied()
                .filter(|id| {
                    let (n, b) = (self.node(*id), self.bounds(*id));
                    Some(*id) != sender
                        && n.children.is_empty()
                        && !b.is_empty()
                        && b != self.bounds(layout)
                })
                .max_by_key(|id| area(&self.bounds(*id))),
        };
        let layout_holds_divider = layout == row
            && in_layout.iter().any(|id| {
                let n = self.node(*id);
                looks_like_time(&n.text) && is_centred(&self.bounds(*id), &lb)
            });
        Some(MessageShape {
            row,
            layout,
            avatar,
            avatar_box,
            sender,
            text,
            bubble,
            layout_holds_divider,
        })
    }

    /// Centred lines in the message list outside every message layout: short date or time
    /// lines are dividers, the rest system lines.
    fn centre_lines(&self, list: NodeId, messages: &[MessageShape]) -> (Vec<NodeId>, Vec<NodeId>) {
        let lb = self.bounds(list);
        let mut dividers = Vec::new();
        let mut system = Vec::new();
        for id in self.dump.descendants(list) {
            let text = self.node(id).text.trim();
            if text.is_empty()
                || messages
                    .iter()
                    .any(|m| id == m.layout || self.dump.is_within(id, m.layout))
                || !is_centred(&self.bounds(id), &lb)
            {
                continue;
            }
            if looks_like_time(text) {
                dividers.push(id);
            } else {
                system.push(id);
            }
        }
        (dividers, system)
    }

    /// The title bar is the band of the back arrow: a number beside the arrow, texts (one may
    /// name a conversation row), a centred empty node where the title would go.
    fn title_bar(&self, chat: &mut ChatShape, back: NodeId) {
        let bb = self.bounds(back);
        let lb = self.bounds(chat.list);
        // Only what belongs to the chat: in 6.x the list's own title bar lies under it.
        let scope = common_ancestor(self.dump, &[back, chat.list]);
        let in_band = |b: &Rect| b.center().1 >= bb.top && b.center().1 <= bb.bottom;
        let nodes: Vec<NodeId> = self.dump.subtree(scope).collect();
        chat.back_badge = nodes.iter().copied().find(|id| {
            let b = self.bounds(*id);
            is_count(&self.node(*id).text)
                && overlap_y(&b, &bb) > 0
                && b.left >= bb.left
                && b.left <= bb.right + bb.width()
        });
        let mut texts: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|id| {
                let (n, b) = (self.node(*id), self.bounds(*id));
                let text = n.text.trim();
                !text.is_empty()
                    && !is_count(text)
                    && in_band(&b)
                    && b.left >= bb.right - bb.width() / 4
            })
            .collect();
        texts.sort_by_key(|id| self.bounds(*id).left);
        chat.title_texts = texts;
        chat.title_bar = nodes
            .iter()
            .copied()
            .filter(|id| {
                let (n, b) = (self.node(*id), self.bounds(*id));
                n.text.is_empty()
                    && !n.clickable
                    && !n.resource_id.is_empty()
                    && in_band(&b)
                    && b.width() * 10 <= lb.width() * 8
                    && (b.center().0 - lb.center().0).abs() <= lb.width() / 20
            })
            .min_by_key(|id| area(&self.bounds(*id)));
    }
}

/// `1 row`, `11 rows`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The deepest node holding all of `ids` (the window root at worst).
fn common_ancestor(dump: &Dump, ids: &[NodeId]) -> NodeId {
    let Some((first, rest)) = ids.split_first() else {
        return 0;
    };
    let mut candidate = *first;
    loop {
        if rest
            .iter()
            .all(|id| *id == candidate || dump.is_within(*id, candidate))
        {
            return candidate;
        }
        match dump.node(candidate).parent {
            Some(parent) => candidate = parent,
            None => return candidate,
        }
    }
}

/// Whether a chat's title bar text names a conversation row: the same text, allowing for
/// the row's truncation (`…`, `...`) and a group's member count in the bar (`名字(98)`).
fn names_row(bar: &str, row: &str) -> bool {
    let bar = strip_member_count(bar.trim());
    let row = row.trim();
    match row.strip_suffix('…').or_else(|| row.strip_suffix("...")) {
        Some(stem) => {
            let stem = stem.trim_end();
            !stem.is_empty() && bar.starts_with(stem)
        }
        None => bar == row,
    }
}

fn strip_member_count(text: &str) -> &str {
    for (open, close) in [('(', ')'), ('（', '）')] {
        if let Some(inner) = text.strip_suffix(close)
            && let Some((name, count)) = inner.rsplit_once(open)
            && !name.trim_end().is_empty()
            && !count.is_empty()
            && count.chars().all(|c| c.is_ascii_digit())
        {
            return name.trim_end();
        }
    }
    text
}

fn is_image(node: &Node) -> bool {
    node.class.contains("Image")
}

fn is_squarish(b: &Rect) -> bool {
    !b.is_empty() && b.width() * 4 <= b.height() * 5 && b.height() * 4 <= b.width() * 5
}

fn area(b: &Rect) -> i64 {
    i64::from(b.width().max(0)) * i64::from(b.height().max(0))
}

fn overlap_y(a: &Rect, b: &Rect) -> i32 {
    a.bottom.min(b.bottom) - a.top.max(b.top)
}

/// Horizontally centred in `within` (6% of its width either way) and narrower than it.
fn is_centred(b: &Rect, within: &Rect) -> bool {
    (b.center().0 - within.center().0).abs() <= within.width() * 6 / 100
        && b.width() < within.width()
}

/// An unread count as WeChat prints it: `3`, `99+`.
fn is_count(text: &str) -> bool {
    let text = text.trim();
    let digits = text.strip_suffix('+').unwrap_or(text);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// A time divider's text: `10:07`, `2025年12月29日 10:07`, `昨天 12:51`, `周四 12:09`,
/// `昨天 晚上7:12`. Short, and a clock time, a date, or a day word.
fn looks_like_time(text: &str) -> bool {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 24 {
        return false;
    }
    let has_digit = text.chars().any(|c| c.is_ascii_digit());
    let clock_or_date = ['年', '月', '日', ':'].iter().any(|c| text.contains(*c));
    let day_word = ["昨天", "前天", "今天", "星期", "周"]
        .iter()
        .any(|w| text.starts_with(w));
    (has_digit && clock_or_date) || day_word
}

fn short_class(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// A selector in a comment: `j8g`, `{ id = "bkk", class = ... }` shortened to its id or,
/// without one, its other fields.
fn selector_summary(selector: &Selector) -> String {
    match &selector.id {
        Some(id) => format!("`{id}`"),
        None => selector_toml(selector),
    }
}

fn role_selector_toml(selector: &RoleSelector) -> String {
    match selector {
        RoleSelector::One(one) => selector_toml(one),
        RoleSelector::Any(many) => format!(
            "[{}]",
            many.iter()
                .map(selector_toml)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `{ id = "bkk", class = "android.widget.EditText" }`, fields in the order the hand-written
/// maps use.
fn selector_toml(selector: &Selector) -> String {
    let fields: Vec<String> = [
        ("id", &selector.id),
        ("class", &selector.class),
        ("text", &selector.text),
        ("desc", &selector.desc),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        value
            .as_ref()
            .map(|v| format!("{key} = {}", toml_string(v)))
    })
    .collect();
    format!("{{ {} }}", fields.join(", "))
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Text from the phone (titles, names) may hold line breaks, which would end a comment and
/// leave the rest as broken TOML.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn version_parts(version: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = version
        .split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect();
    while parts.len() < 3 {
        parts.push(0);
    }
    parts
}

fn join_version(parts: &[u32]) -> String {
    parts
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// `8.0.50` → `8.0.51`: the exclusive end of a range holding one build.
fn next_patch(version: &str) -> String {
    let mut parts = version_parts(version);
    if let Some(last) = parts.last_mut() {
        *last = last.saturating_add(1);
    }
    join_version(&parts)
}

/// `8.0.50` → `8.1.0`: the end of the range the hand-written maps claim.
fn next_minor(version: &str) -> String {
    let parts = version_parts(version);
    join_version(&[parts[0], parts[1].saturating_add(1), 0])
}

/// The comment line that opens each part of the `[roles]` table.
fn section_before(role: Role) -> Option<&'static str> {
    match role {
        Role::ScreenTitle => Some("Conversation list (微信 tab)"),
        Role::ChatTitleBar => Some("Chat (ChattingUI)"),
        Role::DialogButton => Some("Dialogs"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(id: &str) -> Vote {
        Some(Selector {
            id: Some(id.into()),
            ..Selector::default()
        })
    }

    #[test]
    fn a_chat_title_names_a_row_despite_truncation_and_member_counts() {
        assert!(names_row("Alice", "Alice"));
        assert!(names_row(
            "产品二期项目执行-后期制作(12)",
            "产品二期项目执行-后期…"
        ));
        assert!(names_row(
            "车友之家【15-20万】选车讨论61群(98)",
            "车友之家【15-20万】选车..."
        ));
        assert!(names_row("设计群（3）", "设计群"));
        assert!(!names_row("Alice2", "Alice"));
        assert!(!names_row("Bob", "…"));
        assert_eq!(strip_member_count("(12)"), "(12)");
    }

    #[test]
    fn time_lines_counts_and_versions() {
        for time in [
            "10:07",
            "2025年12月29日 10:07",
            "昨天 12:51",
            "周四 12:09",
            "昨天 晚上7:12",
            "昨天",
        ] {
            assert!(looks_like_time(time), "{time}");
        }
        for line in [
            "\"Tom\"与群里其他人都不是朋友关系，请注意隐私安全",
            "你撤回了一条消息",
            "617619",
        ] {
            assert!(!looks_like_time(line), "{line}");
        }
        assert!(is_count("3") && is_count("99+") && !is_count("") && !is_count("+"));
        assert_eq!(next_patch("8.0.50"), "8.0.51");
        assert_eq!(next_patch("8.0"), "8.0.1");
        assert_eq!(next_minor("8.0.50"), "8.1.0");
    }

    #[test]
    fn phone_text_cannot_break_the_file() {
        assert_eq!(comment_safe("a\nb\rc"), "a b c");
        let selector = Selector {
            text: Some("say \"hi\"\n".into()),
            ..Selector::default()
        };
        let line = format!("send_button = {}", selector_toml(&selector));
        let parsed: toml::Table = toml::from_str(&line).expect("valid TOML");
        assert_eq!(parsed["send_button"]["text"].as_str(), Some("say \"hi\"\n"));
    }

    #[test]
    fn votes_decide_the_confidence() {
        let mut tally = Tally::new("rows", Signal::Shape, Confidence::High);
        tally.votes = vec![sel("a"), sel("a"), sel("b")];
        match tally.decide("") {
            Finding::Found {
                selector,
                confidence,
                why,
                ..
            } => {
                assert_eq!(
                    selector,
                    RoleSelector::One(Selector {
                        id: Some("a".into()),
                        ..Selector::default()
                    })
                );
                assert_eq!(confidence, Confidence::Medium);
                assert_eq!(why, "2 of 3 rows agree; others: `b` ×1");
            }
            other => panic!("{other:?}"),
        }
        tally.votes = vec![sel("a"), sel("b"), None];
        assert!(matches!(
            tally.decide(""),
            Finding::Found {
                confidence: Confidence::Low,
                ..
            }
        ));
        tally.votes = vec![None, None];
        assert!(
            matches!(tally.decide(""), Finding::Missing { why } if why.contains("none with a resource id"))
        );
        tally.votes = vec![sel("a")];
        assert!(matches!(
            tally.decide(""),
            Finding::Found {
                confidence: Confidence::Low,
                ..
            }
        ));
        tally.signal = Signal::Label;
        assert!(matches!(
            tally.decide(""),
            Finding::Found {
                confidence: Confidence::Medium,
                ..
            }
        ));
        tally.votes.clear();
        assert_eq!(tally.decide("why"), Finding::Missing { why: "why".into() });
    }

    #[test]
    fn two_roles_with_one_selector_are_flagged() {
        let found = |id: &str| Finding::Found {
            selector: RoleSelector::One(Selector {
                id: Some(id.into()),
                ..Selector::default()
            }),
            confidence: Confidence::High,
            why: String::new(),
            notes: Vec::new(),
        };
        let mut findings = vec![
            (Role::RowTitle, found("x")),
            (Role::RowPreview, found("x")),
            (Role::RowTime, found("y")),
        ];
        flag_shared_selectors(&mut findings);
        let confidence = |i: usize| match &findings[i].1 {
            Finding::Found { confidence, .. } => *confidence,
            Finding::Missing { .. } => panic!("missing"),
        };
        assert_eq!(
            (confidence(0), confidence(1), confidence(2)),
            (Confidence::Low, Confidence::Low, Confidence::High)
        );
    }
}
