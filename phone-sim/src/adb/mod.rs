//! The device side of the ADB wire protocol.
//!
//! - [`packet`]: the 24-byte header, checksum and magic.
//! - [`transport`]: one host connection, the CNXN handshake, stream multiplexing and flow control.
//! - [`shell`]: `shell:`, `shell,v2,…:` and `exec:` services.
//! - [`sync`]: the `sync:` file service (push, pull, stat, list).

pub mod packet;
pub mod shell;
pub mod sync;
pub mod transport;

use crate::device::Device;
pub use transport::{AdbStream, serve_connection};

/// Features we announce in the CNXN banner. `stat_v2`/`ls_v2` make adb 29 use STA2/LST2/LIS2,
/// which [`sync`] implements; `cmd` lets the host use `cmd` instead of `pm` for installs.
pub const DEVICE_FEATURES: &[&str] = &["shell_v2", "cmd", "stat_v2", "ls_v2"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    /// `shell:` and `shell,<args>:`. `v2` selects the shell protocol framing; `pty` follows
    /// adbd: an empty command gets a pty unless `raw` is given.
    Shell {
        v2: bool,
        pty: bool,
        command: String,
    },
    /// `exec:`: raw output, no pty, no framing.
    Exec {
        command: String,
    },
    Sync,
}

impl ServiceKind {
    pub fn parse(service: &str) -> Option<Self> {
        if let Some(command) = service.strip_prefix("exec:") {
            return Some(ServiceKind::Exec {
                command: command.to_string(),
            });
        }
        if service == "sync:" {
            return Some(ServiceKind::Sync);
        }
        let rest = service.strip_prefix("shell")?;
        let (args, command) = rest.split_once(':')?;
        if !(args.is_empty() || args.starts_with(',')) {
            return None;
        }
        let mut v2 = false;
        let mut pty = command.is_empty();
        for arg in args.split(',') {
            match arg {
                "v2" => v2 = true,
                "raw" => pty = false,
                "pty" => pty = true,
                _ => {}
            }
        }
        Some(ServiceKind::Shell {
            v2,
            pty,
            command: command.to_string(),
        })
    }

    pub fn stats_name(&self) -> &'static str {
        match self {
            ServiceKind::Shell { v2: true, .. } => "shell_v2",
            ServiceKind::Shell { v2: false, .. } => "shell",
            ServiceKind::Exec { .. } => "exec",
            ServiceKind::Sync => "sync",
        }
    }
}

pub async fn run_service(kind: ServiceKind, mut stream: AdbStream, device: Device) {
    let result = match kind {
        ServiceKind::Sync => sync::serve(&mut stream, &device).await,
        ServiceKind::Shell {
            v2: true,
            pty,
            command,
        } => shell::serve_v2(&mut stream, &device, &command, pty).await,
        ServiceKind::Shell {
            v2: false,
            pty,
            command,
        } => shell::serve_raw(&mut stream, &device, &command, pty).await,
        ServiceKind::Exec { command } => {
            shell::serve_raw(&mut stream, &device, &command, false).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "service ended early");
    }
    stream.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_strings() {
        assert_eq!(
            ServiceKind::parse("shell,v2,TERM=xterm-256color,raw:echo hi"),
            Some(ServiceKind::Shell {
                v2: true,
                pty: false,
                command: "echo hi".into()
            })
        );
        assert_eq!(
            ServiceKind::parse("shell:ls"),
            Some(ServiceKind::Shell {
                v2: false,
                pty: false,
                command: "ls".into()
            })
        );
        assert_eq!(
            ServiceKind::parse("shell:"),
            Some(ServiceKind::Shell {
                v2: false,
                pty: true,
                command: String::new()
            })
        );
        assert_eq!(
            ServiceKind::parse("shell,v2,pty:"),
            Some(ServiceKind::Shell {
                v2: true,
                pty: true,
                command: String::new()
            })
        );
        assert_eq!(
            ServiceKind::parse("exec:uiautomator dump /dev/tty"),
            Some(ServiceKind::Exec {
                command: "uiautomator dump /dev/tty".into()
            })
        );
        assert_eq!(ServiceKind::parse("sync:"), Some(ServiceKind::Sync));
        assert_eq!(ServiceKind::parse("shellfoo:x"), None);
        assert_eq!(ServiceKind::parse("reboot:"), None);
    }
}
