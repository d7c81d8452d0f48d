//! Speaks the ADB wire protocol to the sim directly over TCP.

mod common;

use common::RawHost;
use tapwire_phone_sim::adb::packet::{A_CLSE, A_CNXN, A_OKAY, A_WRTE, Packet};
use tapwire_phone_sim::{SimConfig, start};

fn cfg() -> SimConfig {
    SimConfig {
        control_addr: None,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn cnxn_exec_and_close() {
    let sim = start(cfg()).await.expect("sim starts");
    // adb_client's greeting: old protocol version, so checksums are verified both ways.
    let (mut host, reply) = RawHost::connect(sim.adb_addr(), 0x0100_0000, "host::adb_client").await;
    assert_eq!(reply.command, A_CNXN);
    let banner = String::from_utf8(reply.payload).expect("utf8");
    assert!(banner.starts_with("device::ro.product.name=PD2309;ro.product.model=V2309A;ro.product.device=PD2309;features="), "{banner}");
    assert!(banner.contains("shell_v2"));

    let out = host.exec(1, "echo hello world").await;
    assert_eq!(out, b"hello world\n");

    let xml = host.exec(2, "uiautomator dump /dev/tty").await;
    let text = String::from_utf8(xml).expect("utf8");
    assert!(text.starts_with("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>"));
    assert!(text.ends_with("</hierarchy>UI hierchary dumped to: /dev/tty\n"));

    // Unknown services are refused with CLSE(0, local).
    host.send(&Packet::new(
        tapwire_phone_sim::adb::packet::A_OPEN,
        9,
        0,
        b"reboot:\0".to_vec(),
    ))
    .await;
    let p = host.recv().await;
    assert_eq!((p.command, p.arg0, p.arg1), (A_CLSE, 0, 9));
    sim.shutdown().await;
}

#[tokio::test]
async fn shell_v2_framing_and_exit_codes() {
    let sim = start(cfg()).await.expect("sim starts");
    // Debian adb 29's greeting; it sends zero checksums, which must be accepted.
    let (mut host, _) = RawHost::connect(
        sim.adb_addr(),
        0x0100_0001,
        "host::features=shell_v2,cmd,stat_v2,ls_v2",
    )
    .await;
    host.open(5, "shell,v2,TERM=xterm-256color,raw:echo out; nosuch")
        .await;
    let bytes = host.read_to_close(5).await;
    let mut frames = Vec::new();
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[i + 1], bytes[i + 2], bytes[i + 3], bytes[i + 4]]) as usize;
        frames.push((bytes[i], bytes[i + 5..i + 5 + len].to_vec()));
        i += 5 + len;
    }
    assert_eq!(i, bytes.len(), "whole frames only");
    assert!(frames.contains(&(1, b"out\n".to_vec())));
    assert!(frames.iter().any(|(id, d)| *id == 2
        && String::from_utf8_lossy(d).contains("nosuch: inaccessible or not found")));
    assert_eq!(frames.last(), Some(&(3, vec![127])));
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_streams_and_flow_control() {
    let sim = start(cfg()).await.expect("sim starts");
    let (mut host, _) = RawHost::connect(sim.adb_addr(), 0x0100_0001, "host::").await;
    // Open two streams; the second's output must not wait on the first being drained.
    // Both OPENs go out before any answer is read: stream 11 may start writing before
    // stream 12's OKAY arrives, as on a real device.
    host.send(&Packet::new(
        tapwire_phone_sim::adb::packet::A_OPEN,
        11,
        0,
        b"exec:screencap -p\0".to_vec(),
    ))
    .await;
    host.send(&Packet::new(
        tapwire_phone_sim::adb::packet::A_OPEN,
        12,
        0,
        b"exec:echo second\0".to_vec(),
    ))
    .await;
    let (mut png, mut second): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let mut closed = 0;
    let mut unacked_on_11 = 0;
    while closed < 2 {
        let p = host.recv().await;
        match p.command {
            A_WRTE => {
                if p.arg1 == 11 {
                    unacked_on_11 += 1;
                    assert_eq!(unacked_on_11, 1, "no second WRTE before our OKAY");
                    png.extend(&p.payload);
                } else {
                    second.extend(&p.payload);
                }
                host.send(&Packet::new(A_OKAY, p.arg1, p.arg0, Vec::new()))
                    .await;
                if p.arg1 == 11 {
                    unacked_on_11 = 0;
                }
            }
            A_CLSE => closed += 1,
            _ => {}
        }
    }
    assert_eq!(second, b"second\n");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let img = image::load_from_memory(&png).expect("valid PNG").to_rgb8();
    assert_eq!(img.dimensions(), (720, 1608));
    sim.shutdown().await;
}

fn sync_req(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    v.extend((body.len() as u32).to_le_bytes());
    v.extend(body);
    v
}

#[tokio::test]
async fn sync_push_pull_with_straddling_requests() {
    let sim = start(cfg()).await.expect("sim starts");
    let (mut host, _) = RawHost::connect(sim.adb_addr(), 0x0100_0001, "host::").await;
    let remote = host.open(21, "sync:").await;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = sync_req(b"SEND", b"/sdcard/Download/big.bin,33188");
    for chunk in content.chunks(65536) {
        wire.extend(sync_req(b"DATA", chunk));
    }
    wire.extend(b"DONE");
    wire.extend(1_700_000_000u32.to_le_bytes());
    // Split at odd places so requests straddle WRTE packets.
    for piece in wire.chunks(50_001) {
        host.send(&Packet::new(A_WRTE, 21, remote, piece.to_vec()))
            .await;
        let ok = host.recv().await;
        assert_eq!(ok.command, A_OKAY);
    }
    let p = host.recv().await;
    assert_eq!(p.command, A_WRTE);
    assert_eq!(&p.payload[..4], b"OKAY");
    host.send(&Packet::new(A_OKAY, 21, remote, Vec::new()))
        .await;

    // STAT and RECV in one WRTE.
    let mut req = sync_req(b"STAT", b"/sdcard/Download/big.bin");
    req.extend(sync_req(b"RECV", b"/sdcard/Download/big.bin"));
    host.send(&Packet::new(A_WRTE, 21, remote, req)).await;
    let mut got = Vec::new();
    loop {
        let p = host.recv().await;
        match p.command {
            A_WRTE => {
                got.extend(p.payload);
                host.send(&Packet::new(A_OKAY, 21, remote, Vec::new()))
                    .await;
            }
            A_OKAY => {}
            _ => panic!("unexpected"),
        }
        if got.len() >= 16 && got.ends_with(b"DONE\0\0\0\0") {
            break;
        }
    }
    assert_eq!(&got[..4], b"STAT");
    assert_eq!(
        u32::from_le_bytes([got[8], got[9], got[10], got[11]]),
        200_000
    );
    let mut data: Vec<u8> = Vec::new();
    let mut i = 16;
    while &got[i..i + 4] == b"DATA" {
        let len = u32::from_le_bytes([got[i + 4], got[i + 5], got[i + 6], got[i + 7]]) as usize;
        assert!(len <= 65536);
        data.extend(&got[i + 8..i + 8 + len]);
        i += 8 + len;
    }
    assert_eq!(data, content);
    host.send(&Packet::new(A_WRTE, 21, remote, b"QUIT\0\0\0\0".to_vec()))
        .await;
    let _ = host.recv().await; // OKAY for the WRTE
    let p = host.recv().await;
    assert_eq!(p.command, A_CLSE);
    sim.shutdown().await;
}

#[tokio::test]
async fn logcat_follows_notifications_until_closed() {
    let sim = start(cfg()).await.expect("sim starts");
    let (mut host, _) = RawHost::connect(sim.adb_addr(), 0x0100_0001, "host::").await;
    // What `adb logcat -b events` sends.
    let remote = host
        .open(
            31,
            "shell,v2,raw:export ANDROID_LOG_TAGS=\"\" ; exec logcat -b events",
        )
        .await;
    let mut seen = String::new();
    let control = sim.control();
    control.incoming(&tapwire_phone_sim::IncomingMessage {
        chat: "Alice".into(),
        group: false,
        sender: None,
        text: "ping".into(),
        system: false,
    });
    while !seen.contains("I notification_enqueue: [10245,") {
        let p = host.recv().await;
        assert_eq!(p.command, A_WRTE, "the stream stays open while following");
        seen.push_str(&String::from_utf8_lossy(&p.payload));
        host.send(&Packet::new(A_OKAY, 31, remote, Vec::new()))
            .await;
    }
    assert!(seen.contains("--------- beginning of events"));
    // The host closing the stream ends the follow; the device answers nothing more on it.
    host.send(&Packet::new(A_CLSE, 31, remote, Vec::new()))
        .await;
    let out = host.exec(32, "echo still-alive").await;
    assert_eq!(out, b"still-alive\n");
    sim.shutdown().await;
}

/// An unauthorised phone answers CNXN with AUTH TOKEN, rejects every signature with a fresh
/// token, and goes quiet once offered a public key (its user would now be asked). It never
/// sends CNXN, so it serves nothing; once authorised, the next connection is served.
#[tokio::test]
async fn unauthorized_phone_answers_auth_and_never_cnxn() {
    use std::time::Duration;
    use tapwire_phone_sim::adb::packet::{A_AUTH, A_OPEN};

    let sim = start(SimConfig {
        unauthorized: true,
        ..cfg()
    })
    .await
    .expect("sim starts");
    let (mut host, reply) = RawHost::connect(
        sim.adb_addr(),
        0x0100_0001,
        "host::features=shell_v2,cmd,stat_v2,ls_v2",
    )
    .await;
    assert_eq!(
        (reply.command, reply.arg0, reply.arg1),
        (A_AUTH, 1, 0),
        "AUTH TOKEN"
    );
    assert_eq!(reply.payload.len(), 20);

    host.send(&Packet::new(A_AUTH, 2, 0, vec![0x5a; 256])).await;
    let again = host.recv().await;
    assert_eq!(
        (again.command, again.arg0),
        (A_AUTH, 1),
        "a bad signature gets a new token"
    );
    assert_ne!(again.payload, reply.payload);

    host.send(&Packet::new(
        A_AUTH,
        3,
        0,
        b"QAAAAFAKEKEY= user@host\0".to_vec(),
    ))
    .await;
    host.send(&Packet::new(A_OPEN, 7, 0, b"exec:echo hi\0".to_vec()))
        .await;
    let silent = tokio::time::timeout(Duration::from_millis(400), host.recv()).await;
    assert!(
        silent.is_err(),
        "no answer to the key nor to OPEN: {silent:?}"
    );

    let stats = sim.control().stats();
    assert_eq!(stats.adb_auth.get("token_sent"), Some(&2));
    assert_eq!(stats.adb_auth.get("signature_rejected"), Some(&1));
    assert_eq!(stats.adb_auth.get("public_key_offered"), Some(&1));
    assert_eq!(stats.connections, 0);

    sim.control().set_adb_authorized(true);
    let (mut host, reply) = RawHost::connect(sim.adb_addr(), 0x0100_0001, "host::").await;
    assert_eq!(reply.command, A_CNXN);
    assert_eq!(host.exec(1, "echo hi").await, b"hi\n");
    sim.shutdown().await;
}

/// Settings live in the phone: what one connection puts, the next one reads, and WeChat
/// ≥ 8.0.55 keeps showing its tree.
#[tokio::test]
async fn settings_outlast_the_connection() {
    let sim = start(SimConfig {
        wechat_version: "8.0.74".into(),
        ..cfg()
    })
    .await
    .expect("sim starts");
    let sts = "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService";
    {
        let (mut host, _) = RawHost::connect(sim.adb_addr(), 0x0100_0001, "host::").await;
        let hidden =
            String::from_utf8(host.exec(1, "uiautomator dump /dev/tty").await).expect("utf8");
        assert!(!hidden.contains("com.tencent.mm:id/j8g"), "hidden before");
        let out = host
            .exec(
                2,
                &format!(
                    "settings put secure enabled_accessibility_services {sts} && settings put secure accessibility_enabled 1"
                ),
            )
            .await;
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }
    let (mut host, _) = RawHost::connect(sim.adb_addr(), 0x0100_0001, "host::").await;
    let got = host
        .exec(3, "settings get secure enabled_accessibility_services")
        .await;
    assert_eq!(got, format!("{sts}\n").into_bytes());
    let shown = String::from_utf8(host.exec(4, "uiautomator dump /dev/tty").await).expect("utf8");
    assert!(shown.contains("com.tencent.mm:id/j8g"), "the tree is back");
    sim.shutdown().await;
}
