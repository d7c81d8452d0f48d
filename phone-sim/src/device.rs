//! One virtual phone: its file system, properties, settings, installed packages, clock, the
//! WeChat model, the system services' logs, and counters. Everything the ADB services and the
//! control API touch. All of it lives here, not in a connection, so it outlasts reconnects.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::accessibility::A11y;
use crate::clock::Clock;
use crate::display::{Screen, Theme};
use crate::fs::{FileStat, FsError, MemFs};
use crate::packages::Packages;
use crate::settings::{DEFAULT_INPUT_METHOD, Namespace, Settings};
use crate::wechat::dump::{AttrSet, to_xml};
use crate::wechat::ids::Ids;
use crate::wechat::model::{Action, MsgKind, Screen as WeChatScreen, SystemEffect, WeChat};
use crate::wechat::render::{RenderError, Screenshot, ScreenshotCache};
use crate::wechat::ui::{self, BuildOpts, Node};

pub use crate::packages::WECHAT_UID;
pub const WECHAT_PID: u32 = 8213;
pub const SYSTEM_SERVER_PID: u32 = 1532;

/// Artificial delays for device operations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Latency {
    pub dump_ms: u64,
    pub screencap_ms: u64,
    pub tap_ms: u64,
    pub input_ms: u64,
}

/// Failures to inject into upcoming operations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Faults {
    /// The next N dumps fail with `ERROR: could not get idle state.`
    pub dump_idle_errors: u32,
    /// The next N dumps fail with `null root node returned by UiTestAutomationBridge.`
    pub dump_null_root: u32,
    /// A message that lands just as the next tap reaches the conversation list: the list
    /// re-sorts between a bot's read of it and its tap, as it does on a busy phone.
    pub arrives_before_next_list_tap: Option<Arrival>,
}

/// A message from someone else (see [`Faults::arrives_before_next_list_tap`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Arrival {
    pub chat: String,
    #[serde(default)]
    pub group: bool,
    /// A group member; a private chat's messages come from the chat's own party.
    pub sender: Option<String>,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Stats {
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    connections: AtomicU64,
    services: Mutex<BTreeMap<String, u64>>,
    commands: Mutex<BTreeMap<String, u64>>,
    input: Mutex<BTreeMap<String, u64>>,
    adb_auth: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub bytes_to_host: u64,
    pub bytes_from_host: u64,
    pub connections: u64,
    pub services: BTreeMap<String, u64>,
    pub commands: BTreeMap<String, u64>,
    /// Touches by what they did: `tap` and `swipe` reached the app; `tap_focus_only` and
    /// `swipe_focus_only` were taken by TalkBack's touch exploration, which presses nothing;
    /// `tap_accessibility_button` landed on Android's floating accessibility button.
    pub input: BTreeMap<String, u64>,
    /// The AUTH exchange of an unauthorised phone: `token_sent`, `signature_rejected`,
    /// `public_key_offered` (the phone would now ask its user).
    pub adb_auth: BTreeMap<String, u64>,
}

fn bump(m: &Mutex<BTreeMap<String, u64>>, key: &str) {
    *m.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_string())
        .or_default() += 1;
}

impl Stats {
    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_service(&self, kind: &str) {
        bump(&self.services, kind);
    }
    pub fn add_command(&self, name: &str) {
        bump(&self.commands, name);
    }
    pub fn add_input(&self, kind: &str) {
        bump(&self.input, kind);
    }
    pub fn add_auth(&self, step: &str) {
        bump(&self.adb_auth, step);
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_to_host: self.bytes_out.load(Ordering::Relaxed),
            bytes_from_host: self.bytes_in.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            services: self
                .services
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            commands: self
                .commands
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            input: self
                .input
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            adb_auth: self
                .adb_auth
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub wechat_version: String,
    pub attrs: AttrSet,
    pub title_text: bool,
    pub ids: Ids,
    pub clock: Clock,
    pub serial: String,
    pub screen: Screen,
    /// Screenshots only: dumps are the same in either theme.
    pub theme: Theme,
}

pub struct State {
    pub fs: MemFs,
    pub props: BTreeMap<String, String>,
    pub settings: Settings,
    pub packages: Packages,
    /// Show Android's floating accessibility button while a running service asks for it.
    /// Off by default: whether a phone shows it depends on its navigation mode and vendor.
    pub accessibility_button: bool,
    /// False: the phone has not accepted this computer's key and answers CNXN with AUTH.
    pub adb_authorized: bool,
    pub wechat: WeChat,
    pub clock: Clock,
    pub latency: Latency,
    pub faults: Faults,
    /// `logcat -b events` buffer: (epoch millis, formatted line without the time stamp).
    pub event_log: Vec<(i64, String)>,
    pub frames: u64,
    pub ime: String,
    last_screen: u64,
}

struct Inner {
    config: DeviceConfig,
    state: Mutex<State>,
    stats: Stats,
    events_tx: broadcast::Sender<String>,
    /// The last screenshot, drawn once per change of what the screen shows.
    screenshots: ScreenshotCache,
}

/// A cheap, cloneable handle to the phone.
#[derive(Clone)]
pub struct Device(Arc<Inner>);

pub const ADB_IME: &str = "com.android.adbkeyboard/.AdbIME";
pub const VENDOR_IME: &str = "com.sohu.inputmethod.sogou.vivo/.SogouIME";

fn default_props(cfg: &DeviceConfig) -> BTreeMap<String, String> {
    [
        ("ro.product.brand", "vivo"),
        ("ro.product.manufacturer", "vivo"),
        ("ro.product.model", "V2309A"),
        ("ro.product.name", "PD2309"),
        ("ro.product.device", "PD2309"),
        ("ro.build.version.release", "14"),
        ("ro.build.version.sdk", "34"),
        ("ro.build.type", "user"),
        ("ro.debuggable", "0"),
        ("ro.product.cpu.abi", "arm64-v8a"),
        ("ro.product.locale", "zh-CN"),
        ("persist.sys.locale", "zh-CN"),
        ("persist.sys.timezone", "Asia/Shanghai"),
        ("sys.boot_completed", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([
        ("ro.serialno".to_string(), cfg.serial.clone()),
        (
            "ro.sf.lcd_density".to_string(),
            cfg.screen.density.to_string(),
        ),
    ])
    .collect()
}

impl State {
    pub fn a11y(&self) -> A11y<'_> {
        A11y::new(&self.settings, &self.packages)
    }

    /// Writes a setting with the side effects Android gives it: the default input method is
    /// the keyboard that receives text.
    pub fn put_setting(&mut self, ns: Namespace, key: &str, value: &str) {
        if ns == Namespace::Secure && key == DEFAULT_INPUT_METHOD {
            self.ime = value.to_string();
        }
        self.settings.put(ns, key, value);
    }
}

impl Device {
    pub fn new(config: DeviceConfig, wechat: WeChat) -> Self {
        let (events_tx, _) = broadcast::channel(1024);
        let state = State {
            fs: MemFs::default(),
            props: default_props(&config),
            settings: Settings::phone_defaults(ADB_IME),
            packages: Packages::default(),
            accessibility_button: false,
            adb_authorized: true,
            wechat,
            clock: config.clock,
            latency: Latency::default(),
            faults: Faults::default(),
            event_log: Vec::new(),
            frames: 1200,
            ime: ADB_IME.to_string(),
            last_screen: 0,
        };
        let dev = Device(Arc::new(Inner {
            config,
            state: Mutex::new(state),
            stats: Stats::default(),
            events_tx,
            screenshots: ScreenshotCache::default(),
        }));
        dev.with(|_| ());
        dev
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.0.config
    }

    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the state, then lets the system react: notification logs, redraw counting.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        st.wechat.now = st.clock.now();
        let r = f(&mut st);
        self.settle(&mut st);
        r
    }

    /// Reads without side effects beyond settling the scroll.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let st = self.lock();
        f(&st)
    }

    fn settle(&self, st: &mut State) {
        if let Some(max) = st
            .wechat
            .open_chat_name()
            .and_then(|n| st.wechat.chat(n))
            .map(|c| ui::chat_max_scroll(c, self.0.config.screen.layout_height()))
        {
            st.wechat.settle_chat_scroll(max);
        }
        let now_ms = st.clock.now_millis();
        for effect in st.wechat.take_effects() {
            let line = match effect {
                SystemEffect::NotificationPosted(n) => format!(
                    "{:>5} I notification_enqueue: [{WECHAT_UID},{WECHAT_PID},com.tencent.mm,{},NULL,0,Notification(channel=message_channel_new_id shortcut=null contentView=null vibrate=null sound=null defaults=0x0 flags=0x10 color=0x00000000 category=msg vis=PRIVATE),0]",
                    SYSTEM_SERVER_PID + 166,
                    n.id
                ),
                SystemEffect::NotificationCancelled(n) => format!(
                    "{:>5} I notification_cancel: [{WECHAT_UID},{WECHAT_PID},com.tencent.mm,{},NULL,0,0,0,8,NULL]",
                    SYSTEM_SERVER_PID + 166,
                    n.id
                ),
            };
            let full = format!(
                "{}  {SYSTEM_SERVER_PID:>5} {line}\n",
                st.clock.logcat_stamp(now_ms)
            );
            st.event_log.push((now_ms, full.clone()));
            let _ = self.0.events_tx.send(full);
        }
        if st.event_log.len() > 5000 {
            st.event_log.drain(..1000);
        }
        // gfxinfo's frame counter moves only when what WeChat shows changes.
        if st.wechat.foreground {
            let xml = to_xml(&self.windows_of(st)[1..], AttrSet::Stock);
            let mut h = std::collections::hash_map::DefaultHasher::new();
            xml.hash(&mut h);
            let sig = h.finish();
            if sig != st.last_screen {
                st.last_screen = sig;
                st.frames += 12;
            }
        }
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<String> {
        self.0.events_tx.subscribe()
    }

    fn windows_of(&self, st: &State) -> Vec<Node> {
        let button_targets = if st.accessibility_button {
            st.a11y()
                .button_targets()
                .iter()
                .map(|b| b.service.label)
                .collect()
        } else {
            Vec::new()
        };
        let opts = BuildOpts {
            ids: &self.0.config.ids,
            screen: self.0.config.screen,
            clock: &st.clock,
            title_text: self.0.config.title_text,
            accessibility_button: button_targets,
        };
        ui::build_windows(&st.wechat, &opts)
    }

    pub fn windows(&self) -> Vec<Node> {
        let st = self.lock();
        self.windows_of(&st)
    }

    /// WeChat ≥ 8.0.55 hides its tree unless it sees an accessibility service it trusts.
    pub fn hides_tree(&self) -> bool {
        crate::wechat::hides_tree(&self.0.config.wechat_version)
            && !self.read(|st| st.a11y().wechat_trusts())
    }

    pub fn touch_exploration(&self) -> bool {
        self.read(|st| st.a11y().touch_exploration())
    }

    /// What `uiautomator dump` writes. A hidden tree is one empty node in place of WeChat's.
    pub fn dump_xml(&self) -> String {
        let mut windows = self.windows();
        if self.hides_tree() {
            for w in &mut windows {
                if w.package == ui::WECHAT_PKG {
                    *w = ui::hidden_app_window();
                }
            }
        }
        to_xml(&windows, self.0.config.attrs)
    }

    /// What the screen shows now, drawn once per change and shared by every caller until the
    /// next one.
    pub fn screenshot(&self) -> std::sync::Arc<Screenshot> {
        let config = &self.0.config;
        self.0
            .screenshots
            .get(&self.windows(), config.screen, config.theme)
    }

    /// `screencap -p`.
    pub fn screencap_png(&self) -> Result<Vec<u8>, RenderError> {
        self.screenshot().png().map(<[u8]>::to_vec)
    }

    /// `screencap` without `-p`: Android's raw header and RGBA pixels.
    pub fn screencap_raw(&self) -> Vec<u8> {
        self.screenshot().raw().to_vec()
    }

    pub fn tap(&self, x: i32, y: i32) {
        self.with(|st| {
            if st.wechat.foreground
                && st.wechat.screen == WeChatScreen::List
                && let Some(a) = st.faults.arrives_before_next_list_tap.take()
            {
                let ts = st.clock.now();
                st.wechat.incoming(
                    &a.chat,
                    a.group,
                    a.sender.as_deref(),
                    &a.text,
                    MsgKind::Text,
                    ts,
                );
            }
        });
        let windows = self.windows();
        if self.touch_exploration() {
            // TalkBack turns a single tap into "move the accessibility focus here"; only a
            // double tap would press. Nothing reaches the app.
            let focused = ui::focus_target(&windows, x, y)
                .map(ui::describe)
                .unwrap_or_default();
            self.0.stats.add_input("tap_focus_only");
            self.with(|st| st.wechat.log("a11y_focus", Some((x, y)), focused));
            return;
        }
        let action = ui::hit_test(&windows, x, y);
        self.0
            .stats
            .add_input(if action == Some(Action::AccessibilityButton) {
                "tap_accessibility_button"
            } else {
                "tap"
            });
        self.with(|st| st.wechat.apply_tap(x, y, action));
    }

    pub fn swipe(&self, x1: i32, y1: i32, x2: i32, y2: i32, ms: u64) {
        if (x2 - x1).abs() < 10 && (y2 - y1).abs() < 10 {
            // A swipe that does not move is how scripts long-press; treat it as a tap.
            self.tap(x1, y1);
            return;
        }
        if self.touch_exploration() {
            // One finger moving is a TalkBack gesture (next or previous item), not a scroll.
            self.0.stats.add_input("swipe_focus_only");
            self.with(|st| {
                st.wechat.log(
                    "a11y_gesture",
                    Some((x1, y1)),
                    format!("to {x2},{y2} in {ms}ms"),
                )
            });
            return;
        }
        self.0.stats.add_input("swipe");
        self.with(|st| {
            let w = &mut st.wechat;
            w.log("swipe", Some((x1, y1)), format!("to {x2},{y2} in {ms}ms"));
            if w.popup.is_some() {
                w.log("tap_blocked", Some((x1, y1)), "swipe under popup");
                return;
            }
            if !w.foreground {
                return;
            }
            // Dragging the finger up moves the content up, i.e. towards later rows. Scrolls
            // are kept in layout pixels, whatever the screen's density.
            let screen = self.0.config.screen;
            let h = screen.layout_height();
            let dy = screen.to_layout(y1 - y2);
            match w
                .open_chat_name()
                .and_then(|n| w.chat(n))
                .map(|c| ui::chat_max_scroll(c, h))
            {
                Some(max) => {
                    if (ui::ACTION_BAR_BOTTOM..ui::bottom_bar_top(h))
                        .contains(&screen.to_layout(y1))
                    {
                        w.scroll_chat(dy, max);
                    }
                }
                None => {
                    let max = ui::list_max_scroll(w, h);
                    w.scroll_list(dy, max);
                }
            }
        });
    }

    pub fn key(&self, code: u32) {
        self.with(|st| st.wechat.key(code));
    }

    /// Text from the active IME.
    pub fn ime_text(&self, text: &str, via: &str) {
        self.with(|st| st.wechat.type_text(text, via));
    }

    pub fn props_snapshot(&self) -> BTreeMap<String, String> {
        self.lock().props.clone()
    }

    pub fn prop(&self, key: &str) -> String {
        self.lock().props.get(key).cloned().unwrap_or_default()
    }

    pub fn fs_stat(&self, path: &str) -> Option<FileStat> {
        self.lock().fs.stat(path)
    }
    pub fn fs_list(&self, path: &str) -> Vec<(String, FileStat)> {
        self.lock().fs.list(path)
    }
    pub fn fs_read(&self, path: &str) -> Result<Vec<u8>, FsError> {
        self.lock().fs.read(path)
    }
    pub fn fs_write(
        &self,
        path: &str,
        data: Vec<u8>,
        mode: u32,
        mtime: i64,
    ) -> Result<(), FsError> {
        self.lock().fs.write(path, data, mode, mtime)
    }

    pub fn latency(&self) -> Latency {
        self.lock().latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::wechat::model::{KEY_BACK, MsgKind, Popup, Screen};

    fn phone() -> Device {
        let config = crate::SimConfig {
            scenario: Scenario::default(),
            ..crate::SimConfig::default()
        };
        crate::build_device(&config).expect("device")
    }

    fn incoming(d: &Device, chat: &str, group: bool, sender: Option<&str>, text: &str) {
        d.with(|st| {
            let ts = st.clock.now();
            st.wechat
                .incoming(chat, group, sender, text, MsgKind::Text, ts);
        });
    }

    /// Centre of the first node whose resource-id ends with `/id`.
    fn centre_of(d: &Device, id: &str) -> Option<(i32, i32)> {
        let mut hit = None;
        for w in d.windows() {
            w.walk(&mut |n| {
                if hit.is_none() && n.id.ends_with(&format!("/{id}")) {
                    hit = Some((
                        (n.bounds.left + n.bounds.right) / 2,
                        (n.bounds.top + n.bounds.bottom) / 2,
                    ));
                }
            });
        }
        hit
    }

    #[test]
    fn unread_counts_badges_and_notifications() {
        let d = phone();
        incoming(&d, "Alice", false, None, "hi");
        incoming(&d, "Alice", false, None, "are you there");
        incoming(&d, "Team", true, Some("Bob"), "standup");
        let xml = d.dump_xml();
        assert!(
            xml.contains("text=\"2\" resource-id=\"com.tencent.mm:id/o_u\""),
            "numeric badge for Alice"
        );
        assert!(xml.contains("text=\"微信(3)\""));
        assert!(
            xml.contains("text=\"Bob: standup\""),
            "group preview is Sender: text"
        );
        let notes = d.read(|st| st.wechat.notifications.clone());
        assert_eq!(notes.len(), 2);
        assert_eq!(
            notes
                .iter()
                .find(|n| n.chat == "Alice")
                .map(|n| n.text.as_str()),
            Some("[2条]are you there")
        );
        assert_eq!(
            notes
                .iter()
                .find(|n| n.chat == "Team")
                .map(|n| n.text.as_str()),
            Some("Bob: standup")
        );
        assert_eq!(
            d.read(|st| st.event_log.len()),
            3,
            "one notification_enqueue per posted message"
        );
        assert!(d.read(|st| {
            st.event_log[0]
                .1
                .contains("I notification_enqueue: [10245,8213,com.tencent.mm,")
        }));

        // Muted chats get a dot and a [N条] prefix, and no notification.
        d.with(|st| st.wechat.configure_chat("Quiet", true, true, false));
        incoming(&d, "Quiet", true, Some("Eve"), "x");
        incoming(&d, "Quiet", true, Some("Eve"), "y");
        let xml = d.dump_xml();
        assert!(xml.contains("[2条] Eve: y"));
        assert!(xml.contains(":id/a_h"));
        assert_eq!(d.read(|st| st.wechat.notifications.len()), 2);

        // Opening a chat clears its unread count and its notification.
        let y = centre_of(&d, "kbq").map(|p| p.1).expect("a row");
        d.tap(360, y);
        let open = d
            .read(|st| st.wechat.open_chat_name().map(str::to_string))
            .expect("chat open");
        assert_eq!(
            d.read(|st| st.wechat.chat(&open).map(|c| c.unread)),
            Some(0)
        );
        assert!(d.read(|st| st.wechat.notifications.iter().all(|n| n.chat != open)));
        // Messages for the open chat arrive without notification.
        let before = d.read(|st| st.event_log.len());
        incoming(&d, &open, false, None, "seen at once");
        assert_eq!(d.read(|st| st.event_log.len()), before);
        assert_eq!(
            d.read(|st| st.wechat.chat(&open).map(|c| c.unread)),
            Some(0)
        );
    }

    #[test]
    fn send_button_only_with_text_and_send_records() {
        let d = phone();
        incoming(&d, "Alice", false, None, "hi");
        d.with(|st| st.wechat.open_chat("Alice"));
        assert!(centre_of(&d, "bql").is_none());
        assert!(centre_of(&d, "bjz").is_some());
        // Text typed before the input has focus is lost, as with a real IME.
        d.ime_text("lost", "test");
        assert!(centre_of(&d, "bql").is_none());
        let (x, y) = centre_of(&d, "bkk").expect("input");
        d.tap(x, y);
        d.ime_text("你好", "test");
        let (sx, sy) = centre_of(&d, "bql").expect("send button appears");
        assert!(d.dump_xml().contains("text=\"发送\""));
        d.tap(sx, sy);
        assert!(centre_of(&d, "bql").is_none(), "input is empty again");
        let sent = d.read(|st| st.wechat.sent.clone());
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].chat.as_str(), sent[0].text.as_str()),
            ("Alice", "你好")
        );
        // The own bubble sits at the right with the avatar at the right edge.
        let xml = d.dump_xml();
        assert!(xml.contains("content-desc=\"我头像\"") && xml.contains("bounds=\"[615,"));
        // BACK first drops focus, then leaves the chat.
        d.key(KEY_BACK);
        assert!(d.read(|st| st.wechat.open_chat_name().is_some()));
        d.key(KEY_BACK);
        assert_eq!(d.read(|st| st.wechat.screen.clone()), Screen::List);
    }

    #[test]
    fn popup_blocks_taps_until_dismissed() {
        let d = phone();
        incoming(&d, "Alice", false, None, "hi");
        d.with(|st| {
            st.wechat.popup = Some(Popup {
                title: "提示".into(),
                text: "更新".into(),
                buttons: vec!["取消".into(), "确定".into()],
            })
        });
        let row_y = centre_of(&d, "kbq").map(|p| p.1).expect("row");
        d.tap(360, row_y);
        assert_eq!(
            d.read(|st| st.wechat.screen.clone()),
            Screen::List,
            "tap under the popup does nothing"
        );
        assert!(d.read(|st| st.wechat.events.iter().any(|e| e.kind == "tap_blocked")));
        // Tap the first button.
        let mut btn = None;
        for w in d.windows() {
            w.walk(&mut |n| {
                if n.class == "android.widget.Button" && n.text == "取消" {
                    btn = Some((
                        (n.bounds.left + n.bounds.right) / 2,
                        (n.bounds.top + n.bounds.bottom) / 2,
                    ));
                }
            });
        }
        let (bx, by) = btn.expect("button in dump");
        d.tap(bx, by);
        assert!(d.read(|st| st.wechat.popup.is_none()));
        d.tap(360, row_y);
        assert!(d.read(|st| st.wechat.open_chat_name() == Some("Alice")));
    }

    #[test]
    fn long_chats_scroll_and_open_at_the_bottom() {
        let d = phone();
        for i in 0..40 {
            incoming(
                &d,
                "Alice",
                false,
                None,
                &format!("message number {i} with some words to wrap over a line"),
            );
        }
        d.with(|st| st.wechat.open_chat("Alice"));
        let bottom = d.dump_xml();
        assert!(
            bottom.contains("message number 39 "),
            "opens at the latest message"
        );
        assert!(!bottom.contains("message number 0 "));
        // Finger moves down: content moves down, older messages come into view.
        for _ in 0..20 {
            d.swipe(360, 400, 360, 1400, 300);
        }
        let top = d.dump_xml();
        assert!(top.contains("message number 0 "));
        assert!(!top.contains("message number 39 "));
        // Partly visible rows are clipped to the list.
        assert!(!top.contains("[0,161]"));
        let frames_before = d.read(|st| st.frames);
        d.swipe(360, 1400, 360, 400, 300);
        assert!(
            d.read(|st| st.frames) > frames_before,
            "a visible change renders frames"
        );
        let frames_now = d.read(|st| st.frames);
        d.with(|_| ());
        assert_eq!(d.read(|st| st.frames), frames_now, "no change, no frames");
    }

    #[test]
    fn conversation_list_scrolls() {
        let d = phone();
        for i in 0..20 {
            incoming(&d, &format!("Chat{i:02}"), false, None, "x");
        }
        assert!(d.dump_xml().contains("text=\"Chat19\""));
        assert!(!d.dump_xml().contains("text=\"Chat00\""));
        d.swipe(360, 1400, 360, 200, 300);
        d.swipe(360, 1400, 360, 200, 300);
        assert!(d.dump_xml().contains("text=\"Chat00\""));
    }

    const STS: &str = "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService";
    const DIANMING: &str = "com.dianming.phoneapp/com.dianming.phoneapp.MyAccessibilityService";
    const TALKBACK: &str =
        "com.google.android.marvin.talkback/com.google.android.marvin.talkback.TalkBackService";
    const OTHER: &str = "com.iflytek.inputmethod/.FlyAccessibilityService";

    /// A phone running `version` with the given packages and settings, one chat with Alice.
    fn configured(version: &str, suite: bool, dianming: bool, settings: &[&str]) -> Device {
        let d = crate::build_device(&crate::SimConfig {
            scenario: Scenario::default(),
            wechat_version: version.into(),
            accessibility_suite: suite,
            dianming,
            settings: settings
                .iter()
                .map(|s| s.parse().expect("valid preset"))
                .collect(),
            ..crate::SimConfig::default()
        })
        .expect("device");
        incoming(&d, "Alice", false, None, "hi");
        d
    }

    fn tree_shown(d: &Device) -> bool {
        let xml = d.dump_xml();
        let hidden = xml.contains(
            "package=\"com.tencent.mm\" content-desc=\"\" checkable=\"false\" checked=\"false\" clickable=\"false\" enabled=\"true\" focusable=\"false\" focused=\"false\" scrollable=\"false\" long-clickable=\"false\" password=\"false\" selected=\"false\" visible-to-user=\"true\" bounds=\"[0,0][0,0]\"",
        );
        let shown = xml.contains("text=\"Alice\"");
        assert_ne!(
            hidden, shown,
            "either the one empty node or the tree: {xml}"
        );
        shown
    }

    #[test]
    fn hidden_tree_matrix() {
        let services = |v: &str| format!("secure:enabled_accessibility_services={v}");
        let on = "secure:accessibility_enabled=1";
        let off = "secure:accessibility_enabled=0";
        // (version, suite installed, 点明 installed, settings, tree shown)
        let cases: Vec<(&str, bool, bool, Vec<String>, bool)> = vec![
            // Before 8.0.55 nothing hides the tree.
            ("8.0.50", true, false, vec![], true),
            (
                "8.0.54",
                false,
                false,
                vec![services(OTHER), on.into()],
                true,
            ),
            // From 8.0.55: no service at all, or only another one.
            ("8.0.55", true, true, vec![], false),
            (
                "8.0.74",
                true,
                true,
                vec![services(OTHER), on.into()],
                false,
            ),
            // A whitelisted service, installed, switched on.
            ("8.0.55", true, false, vec![services(STS), on.into()], true),
            (
                "8.0.74",
                false,
                true,
                vec![services(DIANMING), on.into()],
                true,
            ),
            (
                "8.0.74",
                true,
                false,
                vec![services(&format!("{OTHER}:{STS}")), on.into()],
                true,
            ),
            // ... switched off.
            (
                "8.0.74",
                true,
                false,
                vec![services(STS), off.into()],
                false,
            ),
            (
                "8.0.74",
                false,
                true,
                vec![services(DIANMING), off.into()],
                false,
            ),
            // ... not installed.
            (
                "8.0.74",
                false,
                false,
                vec![services(STS), on.into()],
                false,
            ),
            (
                "8.0.74",
                true,
                false,
                vec![services(DIANMING), on.into()],
                false,
            ),
            // TalkBack alone is not whitelisted; with touch exploration it shows the tree.
            (
                "8.0.74",
                true,
                false,
                vec![services(TALKBACK), on.into()],
                false,
            ),
            (
                "8.0.74",
                true,
                false,
                vec![
                    services(TALKBACK),
                    on.into(),
                    "secure:touch_exploration_enabled=1".into(),
                ],
                true,
            ),
            (
                "8.0.74",
                true,
                false,
                vec![
                    services(TALKBACK),
                    off.into(),
                    "secure:touch_exploration_enabled=1".into(),
                ],
                false,
            ),
        ];
        for (version, suite, dianming, settings, shown) in cases {
            let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
            let d = configured(version, suite, dianming, &settings);
            assert_eq!(
                tree_shown(&d),
                shown,
                "{version} suite={suite} dianming={dianming} {settings:?}"
            );
        }
    }

    #[test]
    fn toggling_the_setting_toggles_the_tree() {
        let d = configured("8.0.72", true, false, &[]);
        assert!(!tree_shown(&d));
        d.with(|st| {
            st.put_setting(
                Namespace::Secure,
                crate::settings::ENABLED_ACCESSIBILITY_SERVICES,
                STS,
            );
            st.put_setting(
                Namespace::Secure,
                crate::settings::ACCESSIBILITY_ENABLED,
                "1",
            );
        });
        assert!(tree_shown(&d));
        d.with(|st| {
            st.settings.delete(
                Namespace::Secure,
                crate::settings::ENABLED_ACCESSIBILITY_SERVICES,
            )
        });
        assert!(!tree_shown(&d));
    }

    #[test]
    fn touch_exploration_taps_only_focus() {
        let d = configured(
            "8.0.74",
            true,
            false,
            &[
                &format!("secure:enabled_accessibility_services={TALKBACK}"),
                "secure:accessibility_enabled=1",
                "secure:touch_exploration_enabled=1",
            ],
        );
        assert!(tree_shown(&d), "TalkBack brings the tree back");
        let (x, y) = centre_of(&d, "kbq").expect("the row is in the tree");
        d.tap(x, y);
        assert_eq!(
            d.read(|st| st.wechat.screen.clone()),
            Screen::List,
            "nothing pressed"
        );
        d.swipe(360, 1400, 360, 400, 300);
        assert_eq!(d.read(|st| st.wechat.list_scroll), 0, "no scroll either");
        let stats = d.stats().snapshot();
        assert_eq!(stats.input.get("tap_focus_only"), Some(&1));
        assert_eq!(stats.input.get("swipe_focus_only"), Some(&1));
        assert_eq!(stats.input.get("tap"), None);
        let focus = d.read(|st| {
            st.wechat
                .events
                .iter()
                .find(|e| e.kind == "a11y_focus")
                .map(|e| e.detail.clone())
        });
        assert!(
            focus.is_some_and(|f| f.contains("Alice")),
            "focus lands on the row's title"
        );

        // Touch exploration off: the same tap opens the chat.
        d.with(|st| {
            st.put_setting(
                Namespace::Secure,
                crate::settings::TOUCH_EXPLORATION_ENABLED,
                "0",
            )
        });
        d.tap(x, y);
        assert_eq!(
            d.read(|st| st.wechat.open_chat_name().map(str::to_string)),
            Some("Alice".into())
        );
        assert_eq!(d.stats().snapshot().input.get("tap"), Some(&1));
    }

    #[test]
    fn the_floating_button_takes_taps_over_the_send_button() {
        let d = configured(
            "8.0.74",
            true,
            false,
            &[
                &format!("secure:enabled_accessibility_services={STS}"),
                "secure:accessibility_enabled=1",
            ],
        );
        d.with(|st| st.wechat.open_chat("Alice"));
        let (x, y) = centre_of(&d, "bkk").expect("input");
        d.tap(x, y);
        d.ime_text("hello", "test");
        let send = centre_of(&d, "bql").expect("send button");
        assert!(!d.dump_xml().contains("随选朗读"), "off by default");

        d.with(|st| st.accessibility_button = true);
        let xml = d.dump_xml();
        assert!(
            xml.contains("package=\"com.android.systemui\" content-desc=\"随选朗读\""),
            "a System UI window in the dump: {xml}"
        );
        let mut button = None;
        for w in d.windows() {
            w.walk(&mut |n| {
                if n.desc == "随选朗读" {
                    button = Some(n.bounds);
                }
            });
        }
        let button = button.expect("button node");
        assert_eq!(button.right, ui::SCREEN_W, "docked to the right edge");
        assert!(
            button.contains(send.0, send.1),
            "it lies over the send button"
        );
        d.tap(send.0, send.1);
        assert!(
            d.read(|st| st.wechat.sent.is_empty()),
            "the send button was not pressed"
        );
        assert!(d.read(|st| st.wechat.events.iter().any(|e| e.kind == "a11y_button")));
        assert_eq!(
            d.stats().snapshot().input.get("tap_accessibility_button"),
            Some(&1)
        );

        // Without a service that asks for it, the option shows nothing.
        d.with(|st| {
            st.put_setting(
                Namespace::Secure,
                crate::settings::ACCESSIBILITY_ENABLED,
                "0",
            )
        });
        assert!(!d.dump_xml().contains("随选朗读"));
        d.tap(send.0, send.1);
        assert_eq!(d.read(|st| st.wechat.sent.len()), 1);
    }

    #[test]
    fn wechat_6_6_6_speaks_its_reported_ids() {
        let d = configured("6.6.6", true, false, &[]);
        let xml = d.dump_xml();
        for id in ["big", "apt", "apv", "apx", "apw", "jj"] {
            assert!(xml.contains(&format!("com.tencent.mm:id/{id}\"")), "{id}");
        }
        assert!(!xml.contains("com.tencent.mm:id/j8g\""), "no 8.0 list id");
        assert!(xml.contains("text=\"Alice\" resource-id=\"com.tencent.mm:id/apv\""));
        d.with(|st| st.wechat.open_chat("Alice"));
        let xml = d.dump_xml();
        for id in ["c48", "jz", "aaa"] {
            assert!(xml.contains(&format!("com.tencent.mm:id/{id}\"")), "{id}");
        }
        assert!(
            xml.contains("text=\"Alice\" resource-id=\"com.tencent.mm:id/hn\""),
            "6.6.6's chat title carries the name"
        );
        // 8.0.x keeps today's ids.
        let d = configured("8.0.50", true, false, &[]);
        assert!(d.dump_xml().contains("com.tencent.mm:id/j8g\""));
    }
}
