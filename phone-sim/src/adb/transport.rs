//! One TCP connection from an ADB host: the CNXN handshake, then many multiplexed streams.
//!
//! A phone that has not accepted the host's key (`State::adb_authorized` false) answers CNXN
//! as adbd does: AUTH TOKEN with 20 random bytes; every signature the host returns fails, so
//! it gets a fresh token; the host's public key is what the phone would show its user, and
//! gets no answer. The host never sees CNXN, so `adb devices` lists the phone `unauthorized`.
//!
//! Flow control follows adb's rule: after a WRTE the sender waits for the peer's OKAY
//! before sending the next WRTE on that stream. Incoming WRTEs are queued and OKAYed at once,
//! which is allowed (the sim never has a reason to push back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::packet::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_STLS, A_VERSION_SKIP_CHECKSUM, A_WRTE, HEADER_LEN,
    Header, MAX_PAYLOAD, Packet, PacketError, command_name,
};
use crate::device::Device;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("packet: {0}")]
    Packet(#[from] PacketError),
    #[error("the host closed the stream")]
    Closed,
}

struct StreamEntry {
    data_tx: mpsc::UnboundedSender<Vec<u8>>,
    ack_tx: mpsc::UnboundedSender<()>,
}

type Table = Arc<Mutex<HashMap<u32, StreamEntry>>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, HashMap<u32, StreamEntry>> {
    // A panic while holding this lock leaves only a map of channels behind, still usable.
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A device-side stream, handed to the service that was OPENed.
pub struct AdbStream {
    local_id: u32,
    remote_id: u32,
    max_payload: usize,
    out: mpsc::UnboundedSender<Packet>,
    data_rx: mpsc::UnboundedReceiver<Vec<u8>>,
    ack_rx: mpsc::UnboundedReceiver<()>,
    table: Table,
    closed: bool,
}

impl AdbStream {
    /// Next payload the host wrote, or `None` once the host closed the stream.
    pub async fn read(&mut self) -> Option<Vec<u8>> {
        self.data_rx.recv().await
    }

    /// Sends `data` in WRTE packets no larger than the negotiated payload, one at a time.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        for chunk in data.chunks(self.max_payload.max(1)) {
            self.out
                .send(Packet::new(
                    A_WRTE,
                    self.local_id,
                    self.remote_id,
                    chunk.to_vec(),
                ))
                .map_err(|_| TransportError::Closed)?;
            if self.ack_rx.recv().await.is_none() {
                self.closed = true;
                return Err(TransportError::Closed);
            }
        }
        Ok(())
    }

    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            // A stream the host already closed is gone from the table; answering its CLSE
            // with another would reach the host as a close of some later stream.
            if lock(&self.table).remove(&self.local_id).is_some() {
                let _ = self.out.send(Packet::new(
                    A_CLSE,
                    self.local_id,
                    self.remote_id,
                    Vec::new(),
                ));
            }
        }
    }
}

impl Drop for AdbStream {
    fn drop(&mut self) {
        self.close();
    }
}

/// `ADB_AUTH_*` in AUTH's arg0.
const AUTH_TOKEN: u32 = 1;
const AUTH_SIGNATURE: u32 = 2;
const AUTH_RSAPUBLICKEY: u32 = 3;
/// adbd's `TOKEN_SIZE`.
const TOKEN_LEN: usize = 20;

/// A fresh token; the host only signs it, so it need not be cryptographically random.
fn auth_token() -> Packet {
    use std::hash::{BuildHasher, Hasher};
    let mut token = Vec::with_capacity(TOKEN_LEN);
    let seed = std::collections::hash_map::RandomState::new();
    let mut i = 0u64;
    while token.len() < TOKEN_LEN {
        let mut h = seed.build_hasher();
        h.write_u64(i);
        token.extend_from_slice(&h.finish().to_le_bytes());
        i += 1;
    }
    token.truncate(TOKEN_LEN);
    Packet::new(A_AUTH, AUTH_TOKEN, 0, token)
}

fn banner(device: &Device) -> String {
    let p = device.props_snapshot();
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    // parse_banner() in adb.cpp splits on ':' then ';' then '=' and reads features as a
    // comma-separated list, so values must not contain any of those characters.
    format!(
        "device::ro.product.name={};ro.product.model={};ro.product.device={};features={}",
        get("ro.product.name"),
        get("ro.product.model"),
        get("ro.product.device"),
        super::DEVICE_FEATURES.join(",")
    )
}

/// Serves one host connection until it closes.
pub async fn serve_connection(sock: TcpStream, device: Device) -> Result<(), TransportError> {
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Packet>();

    let stats_dev = device.clone();
    let writer = tokio::spawn(async move {
        while let Some(p) = out_rx.recv().await {
            let bytes = p.encode();
            stats_dev.stats().add_bytes_out(bytes.len() as u64);
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });

    let table: Table = Arc::new(Mutex::new(HashMap::new()));
    let mut peer_version = 0u32;
    let mut max_payload = MAX_PAYLOAD as usize;
    let mut next_id: u32 = 1;
    let mut connected = false;

    let result = loop {
        let mut head = [0u8; HEADER_LEN];
        if let Err(e) = rd.read_exact(&mut head).await {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                break Ok(());
            }
            break Err(e.into());
        }
        let header = match Header::parse(&head) {
            Ok(h) => h,
            Err(e) => break Err(e.into()),
        };
        let mut payload = vec![0u8; header.data_length as usize];
        if let Err(e) = rd.read_exact(&mut payload).await {
            break Err(e.into());
        }
        device
            .stats()
            .add_bytes_in((HEADER_LEN + payload.len()) as u64);
        // The CNXN itself carries the version that decides whether checksums are checked.
        let version_for_check = if header.command == A_CNXN {
            header.arg0
        } else {
            peer_version
        };
        let packet = match Packet::from_parts(header, payload, version_for_check) {
            Ok(p) => p,
            Err(e) => break Err(e.into()),
        };
        debug!(
            cmd = command_name(packet.command),
            arg0 = packet.arg0,
            arg1 = packet.arg1,
            len = packet.payload.len(),
            "adb <-"
        );

        match packet.command {
            A_CNXN => {
                peer_version = packet.arg0;
                max_payload = (packet.arg1.min(MAX_PAYLOAD) as usize).max(256);
                if !device.read(|st| st.adb_authorized) {
                    device.stats().add_auth("token_sent");
                    let _ = out_tx.send(auth_token());
                    continue;
                }
                connected = true;
                device.stats().add_connection();
                let reply = Packet::new(
                    A_CNXN,
                    A_VERSION_SKIP_CHECKSUM.min(peer_version.max(super::packet::A_VERSION_MIN)),
                    MAX_PAYLOAD,
                    banner(&device).into_bytes(),
                );
                let _ = out_tx.send(reply);
            }
            A_AUTH if !connected && !device.read(|st| st.adb_authorized) => {
                match packet.arg0 {
                    AUTH_SIGNATURE => {
                        device.stats().add_auth("signature_rejected");
                        device.stats().add_auth("token_sent");
                        let _ = out_tx.send(auth_token());
                    }
                    // The phone now asks its user to allow this computer; nobody answers.
                    AUTH_RSAPUBLICKEY => device.stats().add_auth("public_key_offered"),
                    _ => {}
                }
            }
            A_AUTH | A_STLS => {
                // We never ask for AUTH; a host that offers a signature anyway gets our CNXN again.
                let _ = out_tx.send(Packet::new(
                    A_CNXN,
                    A_VERSION_SKIP_CHECKSUM,
                    MAX_PAYLOAD,
                    banner(&device).into_bytes(),
                ));
            }
            A_OPEN if connected => {
                let remote_id = packet.arg0;
                let service = String::from_utf8_lossy(&packet.payload)
                    .trim_end_matches('\0')
                    .to_string();
                let Some(kind) = super::ServiceKind::parse(&service) else {
                    warn!(%service, "unsupported service");
                    device.stats().add_service("unsupported");
                    let _ = out_tx.send(Packet::new(A_CLSE, 0, remote_id, Vec::new()));
                    continue;
                };
                let local_id = next_id;
                next_id = next_id.wrapping_add(1).max(1);
                let (data_tx, data_rx) = mpsc::unbounded_channel();
                let (ack_tx, ack_rx) = mpsc::unbounded_channel();
                lock(&table).insert(local_id, StreamEntry { data_tx, ack_tx });
                let _ = out_tx.send(Packet::new(A_OKAY, local_id, remote_id, Vec::new()));
                let stream = AdbStream {
                    local_id,
                    remote_id,
                    max_payload,
                    out: out_tx.clone(),
                    data_rx,
                    ack_rx,
                    table: table.clone(),
                    closed: false,
                };
                device.stats().add_service(kind.stats_name());
                debug!(%service, local_id, remote_id, "stream opened");
                tokio::spawn(super::run_service(kind, stream, device.clone()));
            }
            A_WRTE => {
                let (local_id, remote_id) = (packet.arg1, packet.arg0);
                let delivered = lock(&table)
                    .get(&local_id)
                    .map(|e| e.data_tx.send(packet.payload).is_ok());
                match delivered {
                    Some(true) => {
                        let _ = out_tx.send(Packet::new(A_OKAY, local_id, remote_id, Vec::new()));
                    }
                    _ => {
                        let _ = out_tx.send(Packet::new(A_CLSE, local_id, remote_id, Vec::new()));
                    }
                }
            }
            A_OKAY => {
                if let Some(e) = lock(&table).get(&packet.arg1) {
                    let _ = e.ack_tx.send(());
                }
            }
            A_CLSE => {
                lock(&table).remove(&packet.arg1);
            }
            other => {
                debug!(cmd = command_name(other), "ignored packet");
            }
        }
    };
    lock(&table).clear();
    drop(out_tx);
    // Services still running hold senders; the writer ends when the last of them is gone.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer).await;
    result
}
