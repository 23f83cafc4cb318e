//! `[hep]` seen by a collector of the test's own on loopback: each SIP
//! message as a HEP3 packet with its real ends, the node's id and its
//! Call-ID, and at the call's end a quality report (packets, loss,
//! jitter, MOS) of what the caller really sent, filed under the caller's
//! Call-ID. (sngrep as the collector: `interop_hep`.)

use crate::support;

use pinless::media::rtp::{HEADER_LEN, Header};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;
use tokio::net::UdpSocket;

/// One HEP3 packet's generic chunks by type.
fn chunks(p: &[u8]) -> HashMap<u16, Vec<u8>> {
    assert_eq!(&p[..4], b"HEP3", "{p:02x?}");
    assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
    let mut out = HashMap::new();
    let mut at = 6;
    while at + 6 <= p.len() {
        let kind = u16::from_be_bytes([p[at + 2], p[at + 3]]);
        let len = usize::from(u16::from_be_bytes([p[at + 4], p[at + 5]]));
        assert!(
            len >= 6 && at + len <= p.len(),
            "chunk length {len} at {at}"
        );
        out.insert(kind, p[at + 6..at + len].to_vec());
        at += len;
    }
    assert_eq!(at, p.len(), "chunks fill the packet");
    out
}

fn addr(c: &HashMap<u16, Vec<u8>>, ip: u16, port: u16) -> SocketAddr {
    let ip: [u8; 4] = c[&ip].clone().try_into().expect("IPv4");
    let port = u16::from_be_bytes(c[&port].clone().try_into().expect("a port"));
    SocketAddr::from((ip, port))
}

#[tokio::test]
async fn every_sip_message_and_a_quality_report_reach_the_collector() {
    let collector = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let extra = format!(
        "\n[hep]\nurl = \"udp:{}\"\nnode_id = 4242\npassword = \"s3cret\"\n",
        collector.local_addr().unwrap()
    );
    let call = held_call(&extra, &[]).await;
    let sip_call_id = call.caller.call_id().to_string();
    let phone_sip = call.phone.stack.udp_addr().unwrap();
    let gw_sip = call.gw.gw.sip_udp.unwrap();

    // 60 packets of 20 ms from the caller, 4 of them never sent: loss.
    let ssrc = 0x5eed;
    for i in 0..60u16 {
        if [10, 20, 30, 40].contains(&i) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker: false,
            payload_type: 0,
            sequence: 500 + i,
            timestamp: 160 * u32::from(i),
            ssrc,
        }
        .write(&mut head);
        let mut packet = head.to_vec();
        packet.extend([0xFFu8; 160]);
        call.phone
            .rtp
            .socket
            .send_to(&packet, call.media.addr)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call.caller.hangup();

    let mut sip = vec![];
    let report = within(10, "the quality report", async {
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = collector.recv(&mut buf).await.unwrap();
            let c = chunks(&buf[..n]);
            assert_eq!(c[&0x000c], 4242u32.to_be_bytes(), "node_id");
            assert_eq!(c[&0x000e], b"s3cret", "password");
            match c[&0x000b][0] {
                0x01 => sip.push(c),
                0x22 => return c,
                other => panic!("capture type {other:#x}"),
            }
        }
    })
    .await;

    // The INVITE went from the phone to the gateway, the 200 back.
    let invite = sip
        .iter()
        .find(|c| c[&0x000f].starts_with(b"INVITE "))
        .expect("the INVITE captured");
    assert_eq!(addr(invite, 0x0003, 0x0007), phone_sip);
    assert_eq!(addr(invite, 0x0004, 0x0008), gw_sip);
    assert_eq!(invite[&0x0002], [17], "UDP");
    assert_eq!(
        invite[&0x0011],
        sip_call_id.as_bytes(),
        "correlated by Call-ID"
    );
    let ok = sip
        .iter()
        .find(|c| {
            c[&0x000f].starts_with(b"SIP/2.0 200 OK")
                && c[&0x000f].windows(12).any(|w| w == b"CSeq: 1 INVI")
        })
        .expect("the 200 OK to the INVITE captured");
    assert_eq!(addr(ok, 0x0003, 0x0007), gw_sip);
    assert_eq!(addr(ok, 0x0004, 0x0008), phone_sip);
    assert!(
        sip.iter().any(|c| c[&0x000f].starts_with(b"BYE ")),
        "the BYE captured"
    );
    let secs = u32::from_be_bytes(invite[&0x0009].clone().try_into().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        u64::from(secs).abs_diff(now) < 30,
        "timestamp {secs} vs {now}"
    );

    // The report: what the caller sent, as the gateway received it.
    assert_eq!(report[&0x0011], sip_call_id.as_bytes());
    let json: Value = serde_json::from_slice(&report[&0x000f]).unwrap();
    assert_eq!(json["callId"], call.call_id, "{json}");
    assert_eq!(json["sipCallId"], sip_call_id);
    let caller = &json["caller"];
    assert_eq!(caller["packets"], 56, "{json}");
    assert_eq!(caller["lost"], 4, "{json}");
    assert!(caller["jitterMs"].as_f64().unwrap() < 20.0, "{json}");
    let mos = caller["mos"].as_f64().unwrap();
    assert!(mos > 1.0 && mos < 4.41, "loss lowers the MOS: {json}");
    let mos_chunk = u16::from_be_bytes(report[&0x0020].clone().try_into().unwrap());
    assert_eq!(f64::from(mos_chunk), (mos * 100.0).round());

    // What was sent is counted; nothing was dropped.
    let sent = call.gw.metric("pinless_hep_sent_total").await;
    assert!(
        sent >= (sip.len() + 1) as f64,
        "{sent} sent, {} received",
        sip.len() + 1
    );
    assert_eq!(call.gw.metric("pinless_hep_dropped_total").await, 0.0);
}

#[tokio::test]
async fn a_tcp_collector_gets_whole_packets_and_a_missing_one_costs_the_call_nothing() {
    use tokio::io::AsyncReadExt;
    // A TCP collector: HEP3 packets back to back on one connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let extra = format!(
        "\n[hep]\nurl = \"tcp:{}\"\n",
        listener.local_addr().unwrap()
    );
    let call = held_call(&extra, &[]).await;
    let (mut conn, _) = within(5, "the HEP connection", listener.accept())
        .await
        .unwrap();
    let invite = within(5, "the INVITE over TCP", async {
        loop {
            let mut head = [0u8; 6];
            conn.read_exact(&mut head).await.unwrap();
            let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
            let mut rest = vec![0u8; len - 6];
            conn.read_exact(&mut rest).await.unwrap();
            let packet = [&head[..], &rest].concat();
            let c = chunks(&packet);
            assert_eq!(c[&0x000c], 2001u32.to_be_bytes(), "the default node_id");
            assert!(!c.contains_key(&0x000e), "no password chunk without one");
            if c[&0x000f].starts_with(b"INVITE ") {
                return c;
            }
        }
    })
    .await;
    assert_eq!(invite[&0x0002], [17], "the SIP went over UDP");
    drop(call);

    // Nobody listens: the call goes on as ever; what was not sent is
    // counted.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = nobody.local_addr().unwrap().port();
    drop(nobody);
    let call = held_call(&format!("\n[hep]\nurl = \"tcp:127.0.0.1:{port}\"\n"), &[]).await;
    let (status, view) = call
        .gw
        .api(
            reqwest::Method::GET,
            &format!("/v1/calls/{}", call.call_id),
            None,
        )
        .await;
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("held")),
        "{view}"
    );
    within(5, "drops counted", async {
        while call.gw.metric("pinless_hep_dropped_total").await < 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(call.gw.metric("pinless_hep_sent_total").await, 0.0);
}
