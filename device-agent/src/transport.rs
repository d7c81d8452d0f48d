//! How shell commands reach a phone: through the adb server (the default, as `adb -s SERIAL
//! shell` does) or straight to the device's adbd over TCP.
//!
//! adb_client is blocking, so a transport belongs to one phone's actor thread.
//!
//! Every call to a phone goes out here, so this is where each is counted and timed
//! ([`crate::telemetry`]: by phone and kind of command).

use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use adb_client::server::ADBServer;
use adb_client::server_device::ADBServerDevice;
use adb_client::tcp::ADBTcpDevice;
use adb_client::{ADBDeviceExt, RustADBError};

use crate::telemetry;

/// adb's own default, used when neither `--adb-server` nor `ANDROID_ADB_SERVER_PORT` says
/// otherwise.
pub const DEFAULT_ADB_SERVER_PORT: u16 = 5037;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no adb server answers at {addr}: start one with `adb start-server` (or `adb -P {port} start-server` for this port), or point Tapwire at yours with --adb-server / ANDROID_ADB_SERVER_PORT", port = addr.port())]
    NoServer { addr: SocketAddrV4 },
    #[error(
        "device {serial} is not attached to the adb server at {server}: `adb devices` lists the serials it knows; for a phone over Wi-Fi run `adb connect HOST:PORT` first"
    )]
    DeviceNotFound {
        serial: String,
        server: SocketAddrV4,
    },
    #[error("device {serial} is offline: check the cable or Wi-Fi, then `adb reconnect offline`")]
    DeviceOffline { serial: String },
    #[error(
        "device {serial} is unauthorized: unlock the phone and accept the \"Allow USB debugging\" prompt"
    )]
    Unauthorized { serial: String },
    #[error("cannot reach device at {addr}: {source}")]
    Unreachable {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("adb error talking to {target}: {message}")]
    Adb { target: String, message: String },
}

impl TransportError {
    /// Whether retrying later may succeed (a cable can be plugged back in); a missing
    /// server or an unauthorised phone needs the user.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::DeviceOffline { .. }
                | TransportError::DeviceNotFound { .. }
                | TransportError::Unreachable { .. }
                | TransportError::Adb { .. }
        )
    }
}

/// What a shell command printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// None when the device's shell protocol does not report exit codes.
    pub exit_code: Option<u8>,
}

impl ShellOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn success(&self) -> bool {
        self.exit_code.is_none_or(|c| c == 0)
    }
}

/// A channel to one phone's shell.
pub trait Transport: Send {
    fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError>;
    /// For logs and errors: which phone and how it is reached.
    fn describe(&self) -> String;
}

/// The adb server's address: an explicit one, else `ANDROID_ADB_SERVER_PORT` on loopback
/// (adb's own convention), else 127.0.0.1:5037.
pub fn adb_server_addr(explicit: Option<SocketAddrV4>) -> SocketAddrV4 {
    explicit.unwrap_or_else(|| {
        let port = std::env::var("ANDROID_ADB_SERVER_PORT")
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(DEFAULT_ADB_SERVER_PORT);
        SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)
    })
}

/// Fails fast with [`TransportError::NoServer`] instead of letting adb_client spawn a
/// server: Tapwire never starts a daemon the user did not ask for.
pub fn check_server(addr: SocketAddrV4) -> Result<(), TransportError> {
    match TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(2)) {
        Ok(_) => Ok(()),
        Err(_) => Err(TransportError::NoServer { addr }),
    }
}

/// adb_client runs `<adb_path> start-server` before talking to a loopback server. Naming a
/// program that does nothing keeps that from starting a stray server on the default port
/// (ours may be elsewhere); [`check_server`] reports a missing server instead.
const NO_AUTOSTART: &str = "true";

fn server(addr: SocketAddrV4) -> ADBServer {
    ADBServer::new_from_path(addr, Some(NO_AUTOSTART.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub serial: String,
    pub state: String,
    pub product: Option<String>,
    pub model: Option<String>,
}

/// `adb devices -l` through the library.
pub fn list_devices(addr: SocketAddrV4) -> Result<Vec<DeviceEntry>, TransportError> {
    check_server(addr)?;
    let devices = server(addr)
        .devices_long()
        .map_err(|e| adb_error(&addr.to_string(), e))?;
    Ok(devices
        .into_iter()
        .map(|d| DeviceEntry {
            serial: d.identifier,
            state: d.state.to_string(),
            product: Some(d.product).filter(|p| !p.is_empty()),
            model: Some(d.model).filter(|m| !m.is_empty()),
        })
        .collect())
}

/// Asks the adb server to connect to a device over TCP, like `adb connect HOST:PORT`.
pub fn connect_device(
    server_addr: SocketAddrV4,
    device: SocketAddrV4,
) -> Result<(), TransportError> {
    check_server(server_addr)?;
    server(server_addr)
        .connect_device(device)
        .map_err(|e| adb_error(&device.to_string(), e))
}

/// A phone reached through the adb server by its serial.
pub struct AdbServerTransport {
    serial: String,
    server: SocketAddrV4,
}

impl AdbServerTransport {
    /// Checks that the server runs and knows the device in the `device` state.
    pub fn connect(server: SocketAddrV4, serial: &str) -> Result<Self, TransportError> {
        let devices = list_devices(server)?;
        match devices.iter().find(|d| d.serial == serial) {
            None => Err(TransportError::DeviceNotFound {
                serial: serial.to_string(),
                server,
            }),
            Some(d) if d.state.eq_ignore_ascii_case("offline") => {
                Err(TransportError::DeviceOffline {
                    serial: serial.to_string(),
                })
            }
            Some(d) if d.state.eq_ignore_ascii_case("unauthorized") => {
                Err(TransportError::Unauthorized {
                    serial: serial.to_string(),
                })
            }
            Some(_) => Ok(AdbServerTransport {
                serial: serial.to_string(),
                server,
            }),
        }
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }
}

impl Transport for AdbServerTransport {
    fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
        let started = Instant::now();
        // A fresh device handle per command: the server closes the connection after each
        // service, and a new handle re-selects the transport by serial.
        let mut device = ADBServerDevice::new(self.serial.clone(), Some(self.server));
        let mut out = ShellOutput::default();
        let result = device.shell_command(&command, Some(&mut out.stdout), Some(&mut out.stderr));
        telemetry::adb_call(&self.serial, command, started.elapsed(), result.is_ok());
        match result {
            Ok(code) => {
                out.exit_code = code;
                Ok(out)
            }
            Err(error) => Err(self.classify(error)),
        }
    }

    fn describe(&self) -> String {
        format!("{} via adb server {}", self.serial, self.server)
    }
}

impl AdbServerTransport {
    fn classify(&self, error: RustADBError) -> TransportError {
        let serial = self.serial.clone();
        match &error {
            RustADBError::IOError(io)
                if matches!(
                    io.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                ) =>
            {
                TransportError::NoServer { addr: self.server }
            }
            RustADBError::ADBRequestFailed(message) | RustADBError::DeviceNotFound(message) => {
                let lower = message.to_ascii_lowercase();
                if lower.contains("offline") {
                    TransportError::DeviceOffline { serial }
                } else if lower.contains("unauthorized") {
                    TransportError::Unauthorized { serial }
                } else if lower.contains("not found") {
                    TransportError::DeviceNotFound {
                        serial,
                        server: self.server,
                    }
                } else {
                    adb_error(&self.describe(), error)
                }
            }
            _ => adb_error(&self.describe(), error),
        }
    }
}

/// A phone's adbd reached directly over TCP (`adb tcpip` mode), without an adb server.
pub struct DirectTcpTransport {
    addr: SocketAddr,
    device: ADBTcpDevice,
}

impl DirectTcpTransport {
    pub fn connect(addr: SocketAddr) -> Result<Self, TransportError> {
        let device = ADBTcpDevice::new(addr).map_err(|e| match e {
            RustADBError::IOError(source) => TransportError::Unreachable { addr, source },
            other => adb_error(&addr.to_string(), other),
        })?;
        Ok(DirectTcpTransport { addr, device })
    }
}

impl Transport for DirectTcpTransport {
    fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
        let started = Instant::now();
        let mut out = ShellOutput::default();
        let result =
            self.device
                .shell_command(&command, Some(&mut out.stdout), Some(&mut out.stderr));
        // The address is what names a phone reached this way (its config's serial).
        telemetry::adb_call(
            &self.addr.to_string(),
            command,
            started.elapsed(),
            result.is_ok(),
        );
        let code = result.map_err(|e| match e {
            RustADBError::IOError(source) => TransportError::Unreachable {
                addr: self.addr,
                source,
            },
            other => adb_error(&self.addr.to_string(), other),
        })?;
        out.exit_code = code;
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("{} over direct TCP", self.addr)
    }
}

fn adb_error(target: &str, error: RustADBError) -> TransportError {
    TransportError::Adb {
        target: target.to_string(),
        message: error.to_string(),
    }
}

/// Quotes one argument for the device's `sh`.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
    {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn missing_server_is_reported_with_what_to_do() {
        // Port 1 on loopback: nothing listens there on any machine we run on.
        let addr = SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 1);
        let error = list_devices(addr).unwrap_err();
        assert!(matches!(error, TransportError::NoServer { .. }));
        assert!(error.to_string().contains("adb start-server"), "{error}");
    }
}
