//! `phone-sim`: a virtual Android phone running a model of WeChat, reachable over the real
//! ADB wire protocol (`adb connect 127.0.0.1:PORT`) and driven from outside through a JSON
//! control API.
//!
//! Layout:
//! - [`adb`]: the device side of the ADB protocol (packets, transport with the AUTH exchange of
//!   an unauthorised phone, shell and sync services).
//! - [`cmd`]: the phone's shell: `cmd/mod.rs` parses a line and runs its pipelines, one file
//!   per command family (`uiautomator`, `screencap`, `input`, `am`, `dumpsys`, `logcat`,
//!   `settings`, `ime`, `pm`, text tools, files, system facts, shell builtins).
//! - [`device`]: one phone's state (file system, properties, settings, packages, clock, logs,
//!   counters) and what a tap, swipe or key does to it.
//! - [`settings`]: the `system`, `secure` and `global` settings tables.
//! - [`packages`]: the installed packages and the accessibility services they ship.
//! - [`accessibility`]: what the settings and packages turn on: running services, TalkBack's
//!   touch exploration, whether WeChat trusts a service and keeps its tree, the floating button.
//! - [`wechat`]: the WeChat model, its view tree (`wechat/ui/`, one file per part of the
//!   screen), the resource ids read from data, dumps and screenshots.
//! - [`display`]: the screen's size, density and theme; the layout pixels the view tree is
//!   written in.
//! - [`clock`]: the phone's clock and WeChat's relative time formats.
//! - [`fs`]: the in-memory file system behind `cat`, `ls`, dump files, push and pull.
//! - [`control`]: [`SimControl`] and the HTTP routes over it.
//! - [`scenario`]: the chats a phone starts with.
//!
//! Data beside the code: `phone-sim/layouts/` holds, per WeChat build, the resource ids of the
//! views WeChat nests its roles in (for 8.0.x the roles themselves come from `ui-maps/`; for
//! 6.6.6 the layout names them too).
//!
//! Start one with [`start`]; the returned [`SimHandle`] knows its addresses and shuts it down.
//! The binary (`main.rs`) runs one until SIGINT or SIGTERM.

pub mod accessibility;
pub mod adb;
pub mod clock;
pub mod cmd;
pub mod control;
pub mod device;
pub mod display;
pub mod fs;
pub mod packages;
pub mod scenario;
pub mod settings;
pub mod wechat;

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};

pub use control::{IncomingMessage, OwnerMessage, SimControl};
pub use device::{Arrival, Device, Faults, Latency};
pub use display::{Screen, Theme};
pub use scenario::Scenario;
pub use wechat::dump::AttrSet;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read UI map {path}: {source}")]
    ReadMap {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Map(#[from] wechat::ids::MapError),
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the ADB device listens; port 0 picks a free port.
    pub adb_addr: SocketAddr,
    /// Where the HTTP control API listens; `None` runs without it (use [`SimHandle::control`]).
    pub control_addr: Option<SocketAddr>,
    /// What `dumpsys package com.tencent.mm` reports. Picks the build whose ids the sim speaks
    /// (6.6.6, or 8.0.x for every other version); ≥ 8.0.55 hides the view tree unless a
    /// trusted accessibility service runs.
    pub wechat_version: String,
    pub attrs: AttrSet,
    /// Put the chat's name in the title bar (the map's `chat_title`); real 8.0.x dumps leave
    /// it out. Builds whose title was reported as read (6.6.6) show it regardless.
    pub title_text: bool,
    /// A UI map whose roles replace the version's build's.
    pub ui_map: Option<PathBuf>,
    pub scenario: Scenario,
    pub serial: String,
    pub utc_offset_minutes: i32,
    /// Google's Android Accessibility Suite (Select to Speak, TalkBack) is installed, as on
    /// phones with Google services.
    pub accessibility_suite: bool,
    /// 点明 (`com.dianming.phoneapp`) is installed.
    pub dianming: bool,
    /// Settings the phone starts with, over Android's defaults (e.g. a user's own
    /// `secure:enabled_accessibility_services`).
    pub settings: Vec<settings::Preset>,
    /// Android shows its floating accessibility button while a running service asks for it.
    pub accessibility_button: bool,
    /// The phone has not accepted this computer's ADB key: `adb devices` shows `unauthorized`.
    pub unauthorized: bool,
    /// The display: 720×1608 (the real dumps' phone), 1080×2400 or 1440×3200. Dumps and
    /// screenshots share its pixels.
    pub screen: Screen,
    /// WeChat's light or dark look, in screenshots.
    pub theme: Theme,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            adb_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            control_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            wechat_version: "8.0.50".into(),
            attrs: AttrSet::Modern,
            title_text: false,
            ui_map: None,
            scenario: Scenario::default_chats(),
            serial: "10AD5F1E0001".into(),
            utc_offset_minutes: 480,
            accessibility_suite: true,
            dianming: false,
            settings: Vec::new(),
            accessibility_button: false,
            unauthorized: false,
            screen: Screen::default(),
            theme: Theme::default(),
        }
    }
}

/// A running phone.
pub struct SimHandle {
    adb_addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    control: SimControl,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    pub fn adb_addr(&self) -> SocketAddr {
        self.adb_addr
    }

    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// Stops listening, drops every ADB connection and waits for the servers to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub fn build_device(config: &SimConfig) -> Result<Device, SimError> {
    let map = match &config.ui_map {
        Some(p) => Some(
            std::fs::read_to_string(p).map_err(|source| SimError::ReadMap {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let ids = wechat::ids::Ids::for_version(&config.wechat_version, map.as_deref())?;
    let clock = clock::Clock {
        offset_secs: 0,
        utc_offset_minutes: config.utc_offset_minutes,
    };
    let mut wechat = wechat::model::WeChat::default();
    config.scenario.apply(&mut wechat, &clock);
    let device = Device::new(
        device::DeviceConfig {
            wechat_version: config.wechat_version.clone(),
            attrs: config.attrs,
            title_text: config.title_text
                || wechat::ids::Build::for_version(&config.wechat_version).title_text,
            ids,
            clock,
            serial: config.serial.clone(),
            screen: config.screen,
            theme: config.theme,
        },
        wechat,
    );
    device.with(|st| {
        st.packages = packages::Packages::new(config.accessibility_suite, config.dianming);
        for p in &config.settings {
            st.put_setting(p.namespace, &p.key, &p.value);
        }
        st.accessibility_button = config.accessibility_button;
        st.adb_authorized = !config.unauthorized;
    });
    Ok(device)
}

/// Starts the phone: the ADB listener and, if configured, the control API.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let device = build_device(&config)?;
    let adb = TcpListener::bind(config.adb_addr)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.adb_addr,
            source,
        })?;
    let adb_addr = adb.local_addr().map_err(|source| SimError::Bind {
        addr: config.adb_addr,
        source,
    })?;
    let (shutdown, rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(serve_adb(adb, device.clone(), rx.clone()))];

    let control = SimControl::new(device.clone());
    let mut control_addr = None;
    if let Some(addr) = config.control_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        control_addr = Some(
            listener
                .local_addr()
                .map_err(|source| SimError::Bind { addr, source })?,
        );
        let app = control::router(control.clone());
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            let stop = async move { stopped(&mut rx).await };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "control server stopped");
            }
        }));
    }
    info!(%adb_addr, ?control_addr, version = %config.wechat_version, "phone-sim listening");
    Ok(SimHandle {
        adb_addr,
        control_addr,
        control,
        shutdown,
        tasks,
    })
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn serve_adb(listener: TcpListener, device: Device, mut stop: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    debug!(%peer, "adb host connected");
                    let device = device.clone();
                    conns.spawn(async move {
                        if let Err(e) = adb::serve_connection(sock, device).await {
                            debug!(%peer, error = %e, "adb connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}
