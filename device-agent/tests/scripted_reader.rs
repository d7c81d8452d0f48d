//! The actor with a screen reader of another kind than the UI tree's: a script that shows
//! readings taken from the real dumps (fixtures/real-dumps/), so the seam that a vision
//! reader will use is held to what the actor needs from it.
//!
//! The phone is a small model: it shows the conversation list until a tap lands on the row
//! with news, then that chat until a tap lands on its back button, then the list with the
//! chat read. The reader learns which screen is in front from the phone, through the
//! transport the actor lends it, the way a real reader takes its dump or screenshot.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapwire_device_agent::agent::{
    AgentConfig, Batch, DeviceStatus, IdleStrategy, PhoneAgent, SendOutcome, Sink,
};
use tapwire_device_agent::reader::{ReadError, ScreenReader};
use tapwire_device_agent::screen::Unread;
use tapwire_device_agent::tail::Watermark;
use tapwire_device_agent::transport::{ShellOutput, Transport, TransportError};
use tapwire_device_agent::{Dump, Rect, ScreenReading, UiMaps, read_screen};

/// The model phone's own command for "which screen is in front" (a stand-in for a dump).
const WHICH_SCREEN: &str = "which-screen";
const CHAT: &str = "王芳剪辑三群";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    List,
    Chat,
    ListRead,
}

impl Screen {
    fn name(self) -> &'static str {
        match self {
            Screen::List => "list",
            Screen::Chat => "chat",
            Screen::ListRead => "list-read",
        }
    }
}

#[derive(Debug)]
struct PhoneState {
    screen: Screen,
    commands: Vec<String>,
}

struct Phone {
    state: Arc<Mutex<PhoneState>>,
    row: Rect,
    back: Rect,
}

fn inside(rect: Rect, x: i32, y: i32) -> bool {
    (rect.left..rect.right).contains(&x) && (rect.top..rect.bottom).contains(&y)
}

impl Transport for Phone {
    fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
        let mut state = self.state.lock().expect("phone state");
        state.commands.push(command.to_string());
        let stdout = match command {
            "dumpsys package com.tencent.mm" => "    versionName=8.0.50\n".to_string(),
            WHICH_SCREEN => state.screen.name().to_string(),
            _ => {
                if let Some(at) = command.strip_prefix("input tap ") {
                    let (x, y) = at.split_once(' ').expect("input tap X Y");
                    let (x, y) = (x.parse().expect("x"), y.parse().expect("y"));
                    state.screen = match state.screen {
                        Screen::List if inside(self.row, x, y) => Screen::Chat,
                        Screen::Chat if inside(self.back, x, y) => Screen::ListRead,
                        other => other,
                    };
                }
                String::new()
            }
        };
        Ok(ShellOutput {
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
            exit_code: Some(0),
        })
    }

    fn describe(&self) -> String {
        "a model phone".into()
    }
}

/// The second reader: canned readings, chosen by what the phone says is in front.
struct ScriptedReader {
    screens: HashMap<String, ScreenReading>,
}

impl ScreenReader for ScriptedReader {
    fn read(&mut self, phone: &mut dyn Transport) -> Result<ScreenReading, ReadError> {
        let shown = phone.shell(WHICH_SCREEN)?.stdout_text();
        Ok(self.screens.get(&shown).expect("a scripted screen").clone())
    }

    fn name(&self) -> &str {
        "script"
    }
}

/// Keeps what the actor records, watermarks included (the actor reads them back).
#[derive(Default)]
struct Recorded {
    batches: Vec<Batch>,
    watermarks: HashMap<String, Watermark>,
}

struct RecordingSink(Arc<Mutex<Recorded>>);

impl Sink for RecordingSink {
    fn watermark(&mut self, _: &str, conversation: &str) -> Result<Option<Watermark>, String> {
        let recorded = self.0.lock().map_err(|e| e.to_string())?;
        Ok(recorded.watermarks.get(conversation).cloned())
    }
    fn record(&mut self, batch: Batch) -> Result<Vec<String>, String> {
        let mut recorded = self.0.lock().map_err(|e| e.to_string())?;
        recorded
            .watermarks
            .insert(batch.conversation.clone(), batch.watermark.clone());
        recorded.batches.push(batch);
        Ok(Vec::new())
    }
    fn sent(&mut self, _: &str, _: SendOutcome) -> Result<(), String> {
        Ok(())
    }
    fn status(&mut self, _: &str, _: DeviceStatus) {}
}

fn real_reading(file: &str) -> ScreenReading {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let maps = UiMaps::load_dir(&root.join("ui-maps")).expect("maps");
    let map = maps.by_name("wechat-8.0").expect("8.0 map");
    let raw =
        std::fs::read_to_string(root.join("fixtures/real-dumps").join(file)).expect("fixture");
    read_screen(&Dump::parse(&raw).expect("real dump parses"), map)
}

/// The real 8.0 list, where only `CHAT` has news: the two newest messages of the real
/// group chat, which `[2条]` counts and whose newest the preview shows. Once read, the dot
/// and the count are gone.
fn list(read: bool) -> ScreenReading {
    let mut reading = real_reading("list-8.0.x-2026-01-groups.xml");
    let list = reading.list.as_mut().expect("a list");
    for row in &mut list.rows {
        row.unread = Unread::None;
        if row.title.as_deref() == Some(CHAT) {
            let preview = "万事如意，大吉大利: @杨帆\u{2005}，做什么的…";
            row.preview = Some(if read {
                preview.to_string()
            } else {
                row.unread = Unread::Dot;
                format!("[2条] {preview}")
            });
        }
    }
    reading
}

#[test]
fn a_scripted_reader_drives_the_actor_to_the_news_and_back() {
    let chat = real_reading("chat-8.0.x-2026-01-group.xml");
    let unread = list(false);
    let row = unread
        .list
        .as_ref()
        .and_then(|l| l.rows.iter().find(|r| r.title.as_deref() == Some(CHAT)))
        .expect("the chat's row")
        .bounds;
    let back = chat
        .chat
        .as_ref()
        .and_then(|c| c.back_button)
        .expect("a back button");
    let screens = HashMap::from([
        (Screen::List.name().to_string(), unread),
        (Screen::Chat.name().to_string(), chat),
        (Screen::ListRead.name().to_string(), list(true)),
    ]);

    let state = Arc::new(Mutex::new(PhoneState {
        screen: Screen::List,
        commands: Vec::new(),
    }));
    let phone = Phone {
        state: state.clone(),
        row,
        back,
    };
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let (_replies, outbound) = mpsc::channel();
    let mut config = AgentConfig::new("phone-1");
    config.idle = IdleStrategy::FullDump;
    config.reply_wait = Duration::from_millis(10);
    let mut agent = PhoneAgent::with_reader(
        config,
        Box::new(phone),
        Box::new(ScriptedReader { screens }),
        Box::new(RecordingSink(recorded.clone())),
        outbound,
    )
    .expect("agent");
    assert_eq!(agent.wechat_version(), "8.0.50");

    agent.cycle().expect("one round");

    let batches = recorded.lock().expect("recorded").batches.clone();
    assert_eq!(batches.len(), 1, "{batches:#?}");
    let batch = &batches[0];
    assert_eq!(batch.conversation, CHAT);
    let messages: Vec<(Option<&str>, Option<&str>, bool)> = batch
        .messages
        .iter()
        .map(|m| (m.sender.as_deref(), m.text.as_deref(), m.is_group))
        .collect();
    assert_eq!(
        messages,
        [
            (Some("陈静"), Some("用抖音赚..加\n收代理"), true),
            (
                Some("万事如意，大吉大利"),
                Some("@杨帆\u{2005}，做什么的，我加入可以吗"),
                true
            ),
        ]
    );

    let state = state.lock().expect("phone state");
    assert_eq!(state.screen, Screen::ListRead, "the actor went back");
    let looks = state.commands.iter().filter(|c| *c == WHICH_SCREEN).count() as u64;
    assert!(looks >= 3, "list, chat, list again: {:?}", state.commands);
    assert_eq!(agent.stats.dumps, looks, "every look is counted");
    assert_eq!(agent.stats.messages, 2);
    drop(state);

    // Nothing new on the next round: nothing recorded again.
    agent.cycle().expect("a second round");
    assert_eq!(recorded.lock().expect("recorded").batches.len(), 1);
}

/// Runs one round of the actor over `list` (the chat's row marked `unread`, its preview
/// without a `[N条]` count) and `chat`, and returns the messages it recorded.
fn first_read_with(unread: Unread, chat: ScreenReading) -> Vec<(Option<String>, Option<String>)> {
    let mut before = list(false);
    for row in &mut before.list.as_mut().expect("a list").rows {
        if row.title.as_deref() == Some(CHAT) {
            row.unread = unread.clone();
            row.preview = Some("万事如意，大吉大利: @杨帆\u{2005}，做什么的…".into());
        }
    }
    let row = before
        .list
        .as_ref()
        .and_then(|l| l.rows.iter().find(|r| r.title.as_deref() == Some(CHAT)))
        .expect("the chat's row")
        .bounds;
    let back = chat
        .chat
        .as_ref()
        .and_then(|c| c.back_button)
        .expect("a back button");
    let screens = HashMap::from([
        (Screen::List.name().to_string(), before),
        (Screen::Chat.name().to_string(), chat),
        (Screen::ListRead.name().to_string(), list(true)),
    ]);
    let state = Arc::new(Mutex::new(PhoneState {
        screen: Screen::List,
        commands: Vec::new(),
    }));
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let (_replies, outbound) = mpsc::channel();
    let mut config = AgentConfig::new("phone-1");
    config.idle = IdleStrategy::FullDump;
    config.reply_wait = Duration::from_millis(10);
    let mut agent = PhoneAgent::with_reader(
        config,
        Box::new(Phone { state, row, back }),
        Box::new(ScriptedReader { screens }),
        Box::new(RecordingSink(recorded.clone())),
        outbound,
    )
    .expect("agent");
    agent.cycle().expect("one round");
    let batches = recorded.lock().expect("recorded").batches.clone();
    batches
        .iter()
        .flat_map(|b| &b.messages)
        .map(|m| (m.sender.clone(), m.text.clone()))
        .collect()
}

/// A count badge whose digits a screenshot did not show (`Unread::Uncounted`) on a chat
/// never read: the burst of messages that ends the chat is news. Read as a dot, the same
/// badge would make the actor take one message and lose the others.
#[test]
fn a_badge_whose_count_was_not_read_takes_the_whole_burst_as_news() {
    // The real group chat, its last two time dividers taken out: three messages from
    // others after the last divider, none of ours.
    let mut chat = real_reading("chat-8.0.x-2026-01-group.xml");
    let messages = &mut chat.chat.as_mut().expect("a chat").messages;
    let dividers: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == tapwire_device_agent::screen::ItemKind::TimeDivider)
        .map(|(i, _)| i)
        .collect();
    for i in dividers.iter().rev().take(2) {
        messages.remove(*i);
    }
    let burst = first_read_with(Unread::Uncounted, chat.clone());
    assert_eq!(burst.len(), 3, "{burst:#?}");
    assert_eq!(burst[1].0.as_deref(), Some("陈静"));
    assert_eq!(burst[2].0.as_deref(), Some("万事如意，大吉大利"));
    // What a dot would have done: one message, two lost.
    assert_eq!(first_read_with(Unread::Dot, chat).len(), 1);
}
