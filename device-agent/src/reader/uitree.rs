//! The screen read from WeChat's accessibility tree: `uiautomator dump` on the phone's
//! shell, parsed ([`crate::dump`]) and recognised with the UI map of the phone's WeChat
//! version ([`crate::screen::read_screen`]).

use std::time::Duration;

use super::{ReadError, ScreenReader};
use crate::dump::{Dump, DumpError};
use crate::screen::{ScreenKind, ScreenReading, read_screen};
use crate::telemetry;
use crate::transport::Transport;
use crate::uimap::UiMap;

const DUMP_COMMAND: &str = "uiautomator dump /dev/tty";

/// Reads one phone's screen from its UI tree with the map chosen for its WeChat version.
pub struct UiTreeReader {
    /// The phone's id, for logs.
    device: String,
    map: UiMap,
    /// For the error that says which build hides its tree.
    wechat_version: String,
}

impl UiTreeReader {
    /// A reader for the phone `device` running WeChat `wechat_version`, whose screens `map`
    /// describes (`agent::detect_map` finds both).
    pub fn new(device: impl Into<String>, map: UiMap, wechat_version: impl Into<String>) -> Self {
        UiTreeReader {
            device: device.into(),
            map,
            wechat_version: wechat_version.into(),
        }
    }

    pub fn map(&self) -> &UiMap {
        &self.map
    }
}

impl ScreenReader for UiTreeReader {
    /// Dumps and reads the screen, retrying while uiautomator reports a transition.
    fn read(&mut self, phone: &mut dyn Transport) -> Result<ScreenReading, ReadError> {
        const ATTEMPTS: u32 = 6;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let out = phone.shell(DUMP_COMMAND)?;
            telemetry::dump_taken(&self.device);
            let raw = out.stdout_text();
            match Dump::parse(&raw) {
                Ok(dump) => {
                    let reading = read_screen(&dump, &self.map);
                    if reading.kind == ScreenKind::HiddenTree {
                        return Err(ReadError::HiddenTree {
                            version: self.wechat_version.clone(),
                        });
                    }
                    return Ok(reading);
                }
                Err(e) => {
                    let e = match e {
                        DumpError::NoHierarchy(_) if !out.stderr.is_empty() => {
                            DumpError::NoHierarchy(out.stderr_text())
                        }
                        other => other,
                    };
                    tracing::debug!(device = %self.device, attempt, error = %e, "dump failed");
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(50 * u64::from(attempt + 1)));
                }
            }
        }
        Err(ReadError::Dump {
            attempts: ATTEMPTS,
            last: last.unwrap_or(DumpError::NoHierarchy(String::new())),
        })
    }

    fn name(&self) -> &str {
        &self.map.name
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::path::PathBuf;

    use super::*;
    use crate::transport::{ShellOutput, TransportError};
    use crate::uimap::UiMaps;

    /// A phone that answers each shell call with the next canned output.
    struct Replies {
        outputs: VecDeque<Result<ShellOutput, TransportError>>,
        commands: Vec<String>,
    }

    impl Replies {
        fn new(outputs: impl IntoIterator<Item = Result<ShellOutput, TransportError>>) -> Self {
            Replies {
                outputs: outputs.into_iter().collect(),
                commands: Vec::new(),
            }
        }
    }

    impl Transport for Replies {
        fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
            self.commands.push(command.to_string());
            self.outputs
                .pop_front()
                .expect("the test scripted this many calls")
        }
        fn describe(&self) -> String {
            "scripted phone".into()
        }
    }

    fn printed(stdout: &str, stderr: &str) -> Result<ShellOutput, TransportError> {
        Ok(ShellOutput {
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            exit_code: Some(0),
        })
    }

    fn reader() -> UiTreeReader {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let maps = UiMaps::load_dir(&root.join("ui-maps")).expect("maps");
        let map = maps.by_name("wechat-8.0").expect("8.0 map").clone();
        UiTreeReader::new("phone-1", map, "8.0.56")
    }

    fn real_dump(file: &str) -> String {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let xml =
            std::fs::read_to_string(root.join("fixtures/real-dumps").join(file)).expect("fixture");
        format!("{xml}UI hierchary dumped to: /dev/tty\n")
    }

    #[test]
    fn a_transition_is_waited_out_and_the_screen_read() {
        let mut phone = Replies::new([
            printed("ERROR: could not get idle state.\n", ""),
            printed(&real_dump("list-8.0.x-2026-01-groups.xml"), ""),
        ]);
        let reading = reader().read(&mut phone).expect("read after one retry");
        assert_eq!(reading.kind, ScreenKind::ConversationList);
        assert_eq!(reading.map, "wechat-8.0");
        assert_eq!(phone.commands, [DUMP_COMMAND, DUMP_COMMAND]);
    }

    #[test]
    fn a_hidden_tree_is_an_error_at_once() {
        let hidden = r#"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0"><node bounds="[0,0][0,0]" package="com.tencent.mm"/></hierarchy>"#;
        let mut phone = Replies::new([printed(hidden, "")]);
        match reader().read(&mut phone) {
            Err(ReadError::HiddenTree { version }) => assert_eq!(version, "8.0.56"),
            other => panic!("expected a hidden tree, got {other:?}"),
        }
        assert_eq!(phone.commands.len(), 1, "no retry can help");
    }

    #[test]
    fn a_phone_without_uiautomator_is_reported_with_what_it_printed() {
        let mut phone = Replies::new((0..6).map(|_| printed("", "sh: uiautomator: not found")));
        match reader().read(&mut phone) {
            Err(ReadError::Dump { attempts, last }) => {
                assert_eq!(attempts, 6);
                assert_eq!(
                    last,
                    DumpError::NoHierarchy("sh: uiautomator: not found".into())
                );
            }
            other => panic!("expected a dump error, got {other:?}"),
        }
    }

    #[test]
    fn a_phone_gone_is_the_transport_error_without_retries() {
        let gone = TransportError::DeviceOffline {
            serial: "phone-1".into(),
        };
        let mut phone = Replies::new([Err(gone)]);
        match reader().read(&mut phone) {
            Err(ReadError::Transport(e)) => assert!(e.is_transient()),
            other => panic!("expected the transport's error, got {other:?}"),
        }
        assert_eq!(phone.commands.len(), 1);
    }
}
