//! HEP3 capture (`[hep]`) with Debian's sngrep as the collector: sngrep
//! listens for HEP on loopback and writes what it received to a pcap
//! file, which the test reads back. Every SIP message of both legs of a
//! bridged call must be there, in order, each grouped under its leg's
//! Call-ID.

use crate::support;

use pinless::sip::LegEvent;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// sngrep collecting HEP on `port` into `pcap`.
struct Sngrep {
    child: std::process::Child,
}

impl Sngrep {
    async fn start(port: u16, pcap: &Path) -> Sngrep {
        let child = Command::new("sngrep")
            .args(["-N", "-q", "-L", &format!("udp:127.0.0.1:{port}"), "-O"])
            .arg(pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sngrep runs (Debian's sngrep package; .ci/run installs it)");
        // Listening once the port is taken.
        within(10, "sngrep to listen", async {
            while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        Sngrep { child }
    }

    /// Stops sngrep (it writes its pcap as packets come; SIGTERM ends it).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Sngrep {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SIP messages in a pcap file, in file order: each record's frame,
/// from the first byte where a SIP start line begins.
fn sip_messages(pcap: &[u8]) -> Vec<String> {
    assert!(pcap.len() >= 24, "not a pcap file: {} bytes", pcap.len());
    let little = match pcap[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a pcap file: magic {:02x?}", &pcap[..4]),
    };
    let u32_at = |at: usize| {
        let b = [pcap[at], pcap[at + 1], pcap[at + 2], pcap[at + 3]];
        usize::try_from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
        .unwrap()
    };
    let starts: [&[u8]; 7] = [
        b"SIP/2.0 ",
        b"INVITE ",
        b"ACK ",
        b"BYE ",
        b"CANCEL ",
        b"OPTIONS ",
        b"INFO ",
    ];
    let mut out = vec![];
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32_at(at + 8);
        let frame = &pcap[at + 16..(at + 16 + len).min(pcap.len())];
        let begin = (0..frame.len()).find(|i| starts.iter().any(|s| frame[*i..].starts_with(s)));
        if let Some(begin) = begin {
            out.push(String::from_utf8_lossy(&frame[begin..]).into_owned());
        }
        at += 16 + len;
    }
    out
}

fn call_id(message: &str) -> Option<&str> {
    message.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim())
    })
}

/// `INVITE`, `200 INVITE`, `ACK`… of the messages of one Call-ID.
fn ladder_of(messages: &[String], id: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| call_id(m) == Some(id))
        .map(|m| {
            let first = m.lines().next().unwrap_or_default();
            let method = m
                .lines()
                .find_map(|l| l.strip_prefix("CSeq:").map(|v| v.trim().to_string()))
                .and_then(|v| v.split(' ').nth(1).map(str::to_string))
                .unwrap_or_default();
            match first.strip_prefix("SIP/2.0 ") {
                Some(status) => format!("{} {method}", &status[..3]),
                None => first.split(' ').next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// The steps `want` appear in `have` in this order (others may be between).
fn in_order(have: &[String], want: &[&str]) -> bool {
    let mut rest = have.iter();
    want.iter().all(|w| rest.any(|h| h == w))
}

#[tokio::test]
async fn sngrep_receives_every_sip_message_of_both_legs_in_order() {
    let port = free_udp_port();
    let dir = std::env::temp_dir().join(format!("pinless-hep-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("capture.pcap");
    let sngrep = Sngrep::start(port, &pcap).await;

    let extra = format!("\n[hep]\nurl = \"udp:127.0.0.1:{port}\"\nnode_id = 42\n");
    let call = held_call(&extra, &[]).await;
    let mut room = Room::new().await;
    let (status, body) = call
        .update(json!({ "sipUri": room.uri("room1", true) }))
        .await;
    assert_eq!(status, 200, "{body}");
    let invite = room.next_invite().await;
    let room_call_id = invite.info.call_id.clone();
    let (mut room_leg, _) = room.answer(invite).await;
    call.wait(|c| c["state"] == "bridged").await;
    let caller_call_id = call.caller.call_id().to_string();
    call.caller.hangup();
    assert_eq!(
        within(5, "BYE at the room", room_leg.next_event()).await,
        LegEvent::Bye
    );

    // The last messages (the room's 200 to our BYE) are sent as they
    // happen; give the collector a moment to write them.
    let messages = within(10, "every message in sngrep's capture", async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(bytes) = std::fs::read(&pcap) else {
                continue;
            };
            if bytes.len() < 24 {
                continue;
            }
            let m = sip_messages(&bytes);
            let room = ladder_of(&m, &room_call_id);
            if room.iter().any(|s| s == "200 BYE") {
                return m;
            }
        }
    })
    .await;
    sngrep.stop();

    let caller = ladder_of(&messages, &caller_call_id);
    assert!(
        in_order(&caller, &["INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"]),
        "caller leg as sngrep got it: {caller:?}"
    );
    let room = ladder_of(&messages, &room_call_id);
    assert!(
        in_order(&room, &["INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"]),
        "room leg as sngrep got it: {room:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
