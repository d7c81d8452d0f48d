//! The `sync:` service: STAT/STA2/LST2, LIST/LIS2, SEND, RECV, QUIT.
//!
//! Requests are parsed from a byte buffer because one request may straddle WRTE packets
//! and one WRTE may carry several requests (adb packs DATA chunks back to back).

use super::transport::{AdbStream, TransportError};
use crate::device::Device;
use crate::fs::FileStat;

const fn mkid(s: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*s)
}
pub const ID_STAT: u32 = mkid(b"STAT");
pub const ID_STAT_V2: u32 = mkid(b"STA2");
pub const ID_LSTAT_V2: u32 = mkid(b"LST2");
pub const ID_LIST: u32 = mkid(b"LIST");
pub const ID_LIST_V2: u32 = mkid(b"LIS2");
pub const ID_DENT: u32 = mkid(b"DENT");
pub const ID_DENT_V2: u32 = mkid(b"DNT2");
pub const ID_SEND: u32 = mkid(b"SEND");
pub const ID_RECV: u32 = mkid(b"RECV");
pub const ID_DATA: u32 = mkid(b"DATA");
pub const ID_DONE: u32 = mkid(b"DONE");
pub const ID_OKAY: u32 = mkid(b"OKAY");
pub const ID_FAIL: u32 = mkid(b"FAIL");
pub const ID_QUIT: u32 = mkid(b"QUIT");

pub const SYNC_DATA_MAX: usize = 64 * 1024;
const ENOENT: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Stat(String),
    StatV2 { id: u32, path: String },
    List { v2: bool, path: String },
    Send(String),
    Recv(String),
    Data(Vec<u8>),
    Done(u32),
    Quit,
    Unknown(u32),
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_request(&mut self) -> Option<Request> {
        let head = self.buf.get(..8)?;
        let id = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        // DONE carries an mtime and QUIT nothing in the length field: no payload follows.
        if id == ID_DONE || id == ID_QUIT {
            self.buf.drain(..8);
            return Some(if id == ID_DONE {
                Request::Done(len)
            } else {
                Request::Quit
            });
        }
        let body = self.buf.get(8..8 + len as usize)?.to_vec();
        self.buf.drain(..8 + len as usize);
        let text = || String::from_utf8_lossy(&body).into_owned();
        Some(match id {
            ID_STAT => Request::Stat(text()),
            ID_STAT_V2 | ID_LSTAT_V2 => Request::StatV2 { id, path: text() },
            ID_LIST => Request::List {
                v2: false,
                path: text(),
            },
            ID_LIST_V2 => Request::List {
                v2: true,
                path: text(),
            },
            ID_SEND => Request::Send(text()),
            ID_RECV => Request::Recv(text()),
            ID_DATA => Request::Data(body),
            other => Request::Unknown(other),
        })
    }
}

fn status(id: u32, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + msg.len());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg);
    out
}

fn stat_v1(st: Option<&FileStat>) -> Vec<u8> {
    let mut out = ID_STAT.to_le_bytes().to_vec();
    let (mode, size, mtime) = st.map_or((0, 0, 0), |s| (s.mode, s.size as u32, s.mtime as u32));
    for w in [mode, size, mtime] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// The body shared by `sync_stat_v2` and `sync_dent_v2` (everything after the id).
fn stat_v2_body(st: Option<&FileStat>, out: &mut Vec<u8>) {
    let error = if st.is_some() { 0u32 } else { ENOENT };
    let s = st.cloned().unwrap_or_default();
    out.extend_from_slice(&error.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // dev
    out.extend_from_slice(&s.ino.to_le_bytes());
    out.extend_from_slice(&s.mode.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // nlink
    let uid = if st.is_some() { 1023u32 } else { 0 }; // media_rw owns /sdcard
    out.extend_from_slice(&uid.to_le_bytes());
    out.extend_from_slice(&uid.to_le_bytes());
    out.extend_from_slice(&s.size.to_le_bytes());
    for t in [s.mtime, s.mtime, s.mtime] {
        out.extend_from_slice(&t.to_le_bytes());
    }
}

fn stat_v2(id: u32, st: Option<&FileStat>) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    stat_v2_body(st, &mut out);
    out
}

fn dents(v2: bool, entries: &[(String, FileStat)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, st) in entries {
        if v2 {
            out.extend_from_slice(&ID_DENT_V2.to_le_bytes());
            stat_v2_body(Some(st), &mut out);
        } else {
            out.extend_from_slice(&ID_DENT.to_le_bytes());
            for w in [st.mode, st.size as u32, st.mtime as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    // The terminator is a whole zeroed dent with the DONE id.
    let size = if v2 { 76 } else { 20 };
    let mut done = vec![0u8; size];
    done[..4].copy_from_slice(&ID_DONE.to_le_bytes());
    out.extend(done);
    out
}

pub async fn serve(stream: &mut AdbStream, device: &Device) -> Result<(), TransportError> {
    let mut parser = Parser::default();
    let mut upload: Option<(String, u32, Vec<u8>)> = None;
    loop {
        while let Some(req) = parser.next_request() {
            match req {
                Request::Stat(path) => {
                    let st = device.fs_stat(&path);
                    stream.write(&stat_v1(st.as_ref())).await?;
                }
                Request::StatV2 { id, path } => {
                    let st = device.fs_stat(&path);
                    stream.write(&stat_v2(id, st.as_ref())).await?;
                }
                Request::List { v2, path } => {
                    let entries = device.fs_list(&path);
                    stream.write(&dents(v2, &entries)).await?;
                }
                Request::Send(spec) => {
                    // "path,mode": the mode is after the LAST comma; paths may contain commas.
                    let (path, mode) = match spec.rsplit_once(',') {
                        Some((p, m)) => (p.to_string(), m.parse::<u32>().unwrap_or(0o100644)),
                        None => (spec, 0o100644),
                    };
                    upload = Some((path, mode, Vec::new()));
                }
                Request::Data(chunk) => {
                    if let Some((_, _, buf)) = upload.as_mut() {
                        buf.extend_from_slice(&chunk);
                    }
                }
                Request::Done(mtime) => {
                    if let Some((path, mode, data)) = upload.take() {
                        match device.fs_write(&path, data, mode, i64::from(mtime)) {
                            Ok(()) => stream.write(&status(ID_OKAY, b"")).await?,
                            Err(e) => {
                                stream
                                    .write(&status(ID_FAIL, e.to_string().as_bytes()))
                                    .await?
                            }
                        }
                    }
                }
                Request::Recv(path) => match device.fs_read(&path) {
                    Ok(data) => {
                        let mut out = Vec::with_capacity(data.len() + 16);
                        for chunk in data.chunks(SYNC_DATA_MAX) {
                            out.extend(status(ID_DATA, chunk));
                        }
                        out.extend(status(ID_DONE, b""));
                        stream.write(&out).await?;
                    }
                    Err(e) => {
                        stream
                            .write(&status(ID_FAIL, e.to_string().as_bytes()))
                            .await?
                    }
                },
                Request::Quit => return Ok(()),
                Request::Unknown(id) => {
                    let name = String::from_utf8_lossy(&id.to_le_bytes()).into_owned();
                    stream
                        .write(&status(
                            ID_FAIL,
                            format!("unknown command {name}").as_bytes(),
                        ))
                        .await?;
                    return Ok(());
                }
            }
        }
        match stream.read().await {
            Some(data) => parser.push(&data),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn requests_straddle_and_pack() {
        let mut wire = req(b"SEND", b"/sdcard/a,b.txt,33188");
        wire.extend(req(b"DATA", b"hello"));
        wire.extend(req(b"DATA", b" world"));
        wire.extend(b"DONE");
        wire.extend(1_700_000_000u32.to_le_bytes());
        wire.extend(b"QUIT\0\0\0\0");
        let mut p = Parser::default();
        let mut got = Vec::new();
        // Feed in awkward 7-byte pieces, as WRTE boundaries may fall anywhere.
        for piece in wire.chunks(7) {
            p.push(piece);
            while let Some(r) = p.next_request() {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![
                Request::Send("/sdcard/a,b.txt,33188".into()),
                Request::Data(b"hello".to_vec()),
                Request::Data(b" world".to_vec()),
                Request::Done(1_700_000_000),
                Request::Quit,
            ]
        );
    }

    #[test]
    fn stat_layouts() {
        assert_eq!(stat_v1(None).len(), 16);
        assert_eq!(stat_v2(ID_STAT_V2, None).len(), 72);
        let missing = stat_v2(ID_LSTAT_V2, None);
        assert_eq!(&missing[0..4], b"LST2");
        assert_eq!(
            u32::from_le_bytes([missing[4], missing[5], missing[6], missing[7]]),
            ENOENT
        );
        assert_eq!(dents(false, &[]).len(), 20);
        assert_eq!(dents(true, &[]).len(), 76);
    }
}
