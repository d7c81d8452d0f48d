//! Shell services: the shell protocol (v2) framing and the raw variants.

use super::transport::{AdbStream, TransportError};
use crate::cmd::{self, Execution};
use crate::device::Device;

pub const ID_STDIN: u8 = 0;
pub const ID_STDOUT: u8 = 1;
pub const ID_STDERR: u8 = 2;
pub const ID_EXIT: u8 = 3;
pub const ID_CLOSE_STDIN: u8 = 4;
pub const ID_WINDOW_SIZE: u8 = 5;

/// `[id u8][len u32le][data]`, as in adb's shell_protocol.h.
pub fn frame(id: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Reassembles shell-protocol packets from WRTE payloads, which may split or join them.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let header = self.buf.get(..5)?;
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let data = self.buf.get(5..5 + len)?.to_vec();
        let id = header[0];
        self.buf.drain(..5 + len);
        Some((id, data))
    }
}

/// Turns LF into CRLF, as a pty's line discipline does.
fn onlcr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

trait Sink {
    async fn out(&mut self, stream: &mut AdbStream, data: &[u8]) -> Result<(), TransportError>;
    async fn err(&mut self, stream: &mut AdbStream, data: &[u8]) -> Result<(), TransportError>;
}

struct V2;
struct Raw {
    pty: bool,
}

impl Sink for V2 {
    async fn out(&mut self, stream: &mut AdbStream, data: &[u8]) -> Result<(), TransportError> {
        if data.is_empty() {
            Ok(())
        } else {
            stream.write(&frame(ID_STDOUT, data)).await
        }
    }
    async fn err(&mut self, stream: &mut AdbStream, data: &[u8]) -> Result<(), TransportError> {
        if data.is_empty() {
            Ok(())
        } else {
            stream.write(&frame(ID_STDERR, data)).await
        }
    }
}

impl Sink for Raw {
    async fn out(&mut self, stream: &mut AdbStream, data: &[u8]) -> Result<(), TransportError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.pty {
            stream.write(&onlcr(data)).await
        } else {
            stream.write(data).await
        }
    }
    // Without the shell protocol stderr shares the one socket with stdout.
    async fn err(&mut self, stream: &mut AdbStream, data: &[u8]) -> Result<(), TransportError> {
        self.out(stream, data).await
    }
}

/// Runs one command line and streams its output; returns the exit code.
async fn run_line<S: Sink>(
    stream: &mut AdbStream,
    device: &Device,
    line: &str,
    sink: &mut S,
    mut input: Option<&mut FrameReader>,
) -> Result<u8, TransportError> {
    let Execution { output, follow } = cmd::execute(device, line).await;
    sink.out(stream, &output.stdout).await?;
    sink.err(stream, &output.stderr).await?;
    if let Some(mut follow) = follow {
        loop {
            tokio::select! {
                line = follow.rx.recv() => match line {
                    Ok(line) => {
                        if let Some(text) = follow.filter(&line) {
                            sink.out(stream, text.as_bytes()).await?;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                },
                data = stream.read() => match data {
                    None => return Err(TransportError::Closed),
                    Some(d) => {
                        // Ctrl-C over a pty, or the v2 stdin being closed, ends a following logcat.
                        if d.contains(&3) { break; }
                        if let Some(fr) = input.as_deref_mut() {
                            fr.push(&d);
                            let mut stop = false;
                            while let Some((id, payload)) = fr.next_frame() {
                                if id == ID_STDIN && payload.contains(&3) { stop = true; }
                            }
                            if stop { break; }
                        }
                    }
                },
            }
        }
        return Ok(130);
    }
    Ok(output.code)
}

pub async fn serve_v2(
    stream: &mut AdbStream,
    device: &Device,
    command: &str,
    pty: bool,
) -> Result<(), TransportError> {
    let mut sink = V2;
    let mut frames = FrameReader::default();
    let code = if command.trim().is_empty() {
        interactive(stream, device, &mut sink, true, pty).await?
    } else {
        run_line(stream, device, command, &mut sink, Some(&mut frames)).await?
    };
    stream.write(&frame(ID_EXIT, &[code])).await?;
    Ok(())
}

pub async fn serve_raw(
    stream: &mut AdbStream,
    device: &Device,
    command: &str,
    pty: bool,
) -> Result<(), TransportError> {
    let mut sink = Raw { pty };
    if command.trim().is_empty() {
        interactive(stream, device, &mut sink, false, pty).await?;
    } else {
        run_line(stream, device, command, &mut sink, None).await?;
    }
    Ok(())
}

/// A line-at-a-time interactive shell: enough for `adb shell` followed by typed commands.
async fn interactive<S: Sink>(
    stream: &mut AdbStream,
    device: &Device,
    sink: &mut S,
    v2: bool,
    pty: bool,
) -> Result<u8, TransportError> {
    // sh prints a prompt only when it talks to a terminal.
    let prompt = if pty {
        format!("{}:/ $ ", device.prop("ro.product.device"))
    } else {
        String::new()
    };
    sink.out(stream, prompt.as_bytes()).await?;
    let mut frames = FrameReader::default();
    let mut pending = Vec::new();
    let mut code = 0u8;
    while let Some(data) = stream.read().await {
        let mut stdin_closed = false;
        if v2 {
            frames.push(&data);
            while let Some((id, payload)) = frames.next_frame() {
                match id {
                    ID_STDIN => pending.extend_from_slice(&payload),
                    ID_CLOSE_STDIN => stdin_closed = true,
                    _ => {}
                }
            }
        } else {
            pending.extend_from_slice(&data);
        }
        while let Some(pos) = pending.iter().position(|&b| b == b'\n' || b == b'\r') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if line == "exit" {
                return Ok(code);
            }
            if !line.is_empty() {
                code = run_line(stream, device, &line, sink, None).await?;
            }
            sink.out(stream, prompt.as_bytes()).await?;
        }
        if stdin_closed {
            break;
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip_across_splits() {
        let mut wire = frame(ID_STDOUT, b"hello");
        wire.extend(frame(ID_EXIT, &[127]));
        let mut r = FrameReader::default();
        r.push(&wire[..3]);
        assert_eq!(r.next_frame(), None);
        r.push(&wire[3..]);
        assert_eq!(r.next_frame(), Some((ID_STDOUT, b"hello".to_vec())));
        assert_eq!(r.next_frame(), Some((ID_EXIT, vec![127])));
        assert_eq!(r.next_frame(), None);
    }

    #[test]
    fn frame_layout() {
        assert_eq!(frame(ID_STDERR, b"ab"), vec![2, 2, 0, 0, 0, b'a', b'b']);
    }

    #[test]
    fn pty_translates_newlines() {
        assert_eq!(onlcr(b"a\nb\n"), b"a\r\nb\r\n".to_vec());
    }
}
