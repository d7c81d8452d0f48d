//! A minimal ADB host over raw TCP, for tests that must not depend on the adb binary.
#![allow(dead_code)]

use std::time::Duration;

use tapwire_phone_sim::adb::packet::{
    A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, HEADER_LEN, Header, Packet,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawHost {
    sock: TcpStream,
}

impl RawHost {
    pub async fn connect(addr: std::net::SocketAddr, version: u32, banner: &str) -> (Self, Packet) {
        let sock = TcpStream::connect(addr).await.expect("connect");
        let mut h = RawHost { sock };
        h.send(&Packet::new(
            A_CNXN,
            version,
            1 << 20,
            format!("{banner}\0").into_bytes(),
        ))
        .await;
        let reply = h.recv().await;
        (h, reply)
    }

    pub async fn send(&mut self, p: &Packet) {
        self.sock.write_all(&p.encode()).await.expect("write");
    }

    pub async fn recv(&mut self) -> Packet {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut head = [0u8; HEADER_LEN];
            self.sock.read_exact(&mut head).await.expect("header");
            let h = Header::parse(&head).expect("valid header");
            let mut payload = vec![0u8; h.data_length as usize];
            self.sock.read_exact(&mut payload).await.expect("payload");
            Packet::from_parts(h, payload, 0).expect("checksum must always be right")
        })
        .await
        .expect("device answered in time")
    }

    /// Opens `service`, returns the device's stream id.
    pub async fn open(&mut self, local: u32, service: &str) -> u32 {
        self.send(&Packet::new(
            A_OPEN,
            local,
            0,
            format!("{service}\0").into_bytes(),
        ))
        .await;
        let p = self.recv().await;
        assert_eq!(p.command, A_OKAY, "OPEN {service} answered with OKAY");
        assert_eq!(p.arg1, local);
        p.arg0
    }

    /// Reads WRTEs (OKAYing each) until CLSE; returns the bytes.
    pub async fn read_to_close(&mut self, local: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let p = self.recv().await;
            match p.command {
                A_WRTE => {
                    assert_eq!(p.arg1, local);
                    out.extend(p.payload);
                    self.send(&Packet::new(A_OKAY, local, p.arg0, Vec::new()))
                        .await;
                }
                A_CLSE => return out,
                A_OKAY => {}
                other => panic!("unexpected packet {other:#x}"),
            }
        }
    }

    pub async fn exec(&mut self, local: u32, cmd: &str) -> Vec<u8> {
        self.open(local, &format!("exec:{cmd}")).await;
        self.read_to_close(local).await
    }
}
