//! Interop with baresip (Debian `baresip-core`, its `srtp` module) as an
//! SRTP caller over TLS: with `mediaenc=srtp-mand` it calls a `require`
//! entry, hears the music (its `sndfile` recording of what it decrypted
//! and decoded is not silence), is bridged to an SRTP room over TLS and
//! audio crosses both ways (the room decrypts baresip's tone; baresip's
//! recording holds the room's pattern); without SRTP it gets 488.
//! Run with `cargo test --features interop`; fails, never skips, when
//! baresip is missing.

use crate::support;

use pinless::media::g711::ulaw_decode;
use pinless::media::{LegKeys, SrtpLeg};
use pinless::sdes::MasterKey;
use pinless::sip::{crypto, sdp};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::baresip::Baresip;
use support::peers::TestCert;
use support::*;

/// A port free for UDP, TCP and TLS (the next one) on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if port < 65_000
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}

/// A headless baresip that dials `target` over TLS (trusting `cert`),
/// with `mediaenc` (e.g. `srtp-mand`) or none, recording what it plays
/// into `dir/rec`.
fn dial(target: &str, cert: &TestCert, mediaenc: Option<&str>) -> Baresip {
    let dir = Baresip::dir();
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    // baresip opens TLS legs only with a certificate of its own.
    let pem = dir.join("cert.pem");
    let both = [
        std::fs::read(&cert.cert).unwrap(),
        std::fs::read(&cert.key).unwrap(),
    ]
    .concat();
    std::fs::write(&pem, both).unwrap();
    let port = free_port();
    let config = format!(
        "poll_method epoll\n\
             sip_listen 127.0.0.1:{port}\n\
             sip_certificate {pem}\n\
             sip_cafile {ca}\n\
             net_interface 127.0.0.1\n\
             audio_source ausine,440\n\
             ausrc_srate 48000\n\
             auplay_srate 48000\n\
             ausrc_channels 2\n\
             auplay_channels 2\n\
             snd_path {rec}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module srtp.so\n\
             module sndfile.so\n\
             module account.so\n\
             module_app menu.so\n",
        pem = pem.display(),
        ca = cert.cert.display(),
        rec = rec.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    let enc = mediaenc
        .map(|m| format!(";mediaenc={m}"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:caller@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU{enc}\n"),
    )
    .unwrap();
    Baresip::dial(dir, target, 40)
}

/// The recordings' names and sizes.
fn files(caller: &Baresip) -> Vec<(String, u64)> {
    std::fs::read_dir(caller.dir.join("rec"))
        .map(|d| {
            d.flatten()
                .map(|f| {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    (f.file_name().to_string_lossy().to_string(), len)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The samples of baresip's recording of what it received (decrypted
/// and decoded), as far as written.
fn heard(caller: &Baresip) -> Vec<i16> {
    let Ok(dir) = std::fs::read_dir(caller.dir.join("rec")) else {
        return vec![];
    };
    for f in dir.flatten() {
        let name = f.file_name().to_string_lossy().to_string();
        if name.contains("dec") {
            let bytes = std::fs::read(f.path()).unwrap_or_default();
            return bytes
                .get(44..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
    }
    vec![]
}

async fn gateway(hooks: &WebhookReceiver, cert: &TestCert) -> TestGateway {
    let (c, k) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    TestGateway::start_with_env(
        &hooks.url(),
        "media_encryption = \"require\"",
        &[
            ("PINLESS_SIP__TLS", "127.0.0.1:0"),
            ("PINLESS_SIP__TLS_CERT", c),
            ("PINLESS_SIP__TLS_KEY", k),
            ("PINLESS_SIP__TLS_CA", c),
        ],
    )
    .await
}

/// Root mean square of `s`.
fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
}

/// The longest run of samples within 3 % of `value`.
fn longest_run_near(s: &[i16], value: i16) -> usize {
    let tol = (f64::from(value).abs() * 0.03).max(8.0);
    let (mut best, mut run) = (0, 0);
    for x in s {
        if (f64::from(*x) - f64::from(value)).abs() <= tol {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[tokio::test]
async fn baresip_with_srtp_over_tls_hears_music_then_talks_with_an_srtp_room() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = gateway(&hooks, &cert).await;
    let tls = gw.gw.sip_tls.expect("a TLS listener");
    let caller = dial(
        &format!("sip:support@{tls};transport=tls"),
        &cert,
        Some("srtp-mand"),
    );
    let hook = within(15, "the webhook", hooks.next()).await.json();
    let call_id = hook["callId"].as_str().unwrap().to_string();

    // Music, as baresip decrypted and decoded it: not silence.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let heard = heard(&caller);
        if heard.len() > 8_000 && rms(&heard[4_000..]) > 300.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no music in baresip's recording ({} samples); files {:?}; log:\n{}",
            heard.len(),
            files(&caller),
            caller.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, call) = gw.get_call(&call_id).await;
    assert_eq!(call["state"], "held", "{call:#}");

    // Bridged to an SRTP room over TLS.
    let mut room = Room::with(Some(&cert)).await;
    let target = format!("sip:agent@{};transport=tls", room.stack.tls_addr().unwrap());
    let (status, body) = gw
        .update(gw.update_body(
            &call_id,
            json!({ "sipUri": target, "mediaEncryption": "require" }),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let invite = room.next_invite().await;
    let offer = crypto::read(&invite.info.sdp);
    let line = offer.pick().expect("an SRTP offer").clone();
    let room_key = MasterKey::fresh(line.key.suite);
    let offered = sdp::parse(&invite.info.sdp).unwrap();
    let answer = crypto::secure(
        sdp::answer(room.rtp.addr.ip(), room.rtp.addr.port(), offered.choose()),
        true,
        &[(line.tag, &room_key)],
    );
    let _room_leg = invite.accept(&room.stack, answer).await.unwrap();
    let srtp = Arc::new(
        SrtpLeg::new(LegKeys {
            local: room_key,
            remote: line.key.clone(),
        })
        .unwrap(),
    );
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // baresip → room: its 440 Hz tone, decrypted by the room.
    let mut tone = Vec::new();
    within(10, "baresip's tone at the room", async {
        let mut buf = [0u8; 2048];
        while tone.len() < 25 {
            let (n, _) = room.rtp.socket.recv_from(&mut buf).await.unwrap();
            if let Some(m) = srtp.unprotect(&mut buf, n) {
                let (h, range) = pinless::media::rtp::parse(&buf[..m]).unwrap();
                assert_eq!(h.payload_type, 0);
                let pcm: Vec<i16> = buf[range].iter().map(|b| ulaw_decode(*b)).collect();
                tone.push(rms(&pcm));
            }
        }
    })
    .await;
    assert!(
        tone[5..].iter().all(|r| *r > 1_000.0),
        "a tone, not silence: {tone:?}"
    );

    // room → baresip: a constant PCMU pattern, heard as a constant level.
    let before = heard(&caller).len();
    let sender = {
        let srtp = srtp.clone();
        let socket = room.rtp.socket.clone();
        let to = offered.addr;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 0..150u16 {
                tick.tick().await;
                let mut p = vec![0x80, 0];
                p.extend_from_slice(&(1000 + i).to_be_bytes());
                p.extend_from_slice(&(u32::from(i) * 160).to_be_bytes());
                p.extend_from_slice(&0x5EC0_0001u32.to_be_bytes());
                p.extend(std::iter::repeat_n(0x5Bu8, 160));
                let _ = socket.send_to(&srtp.protect(&p).unwrap(), to).await;
            }
        })
    };
    let level = ulaw_decode(0x5B);
    within(10, "the room's pattern in baresip's recording", async {
        loop {
            let heard = heard(&caller);
            if longest_run_near(&heard[before.min(heard.len())..], level) >= 800 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    sender.abort();
    let _ = caller.log();
}

#[tokio::test]
async fn baresip_without_srtp_is_refused_by_a_require_entry() {
    let cert = TestCert::new();
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = gateway(&hooks, &cert).await;
    let tls = gw.gw.sip_tls.expect("a TLS listener");
    let caller = dial(&format!("sip:support@{tls};transport=tls"), &cert, None);
    within(15, "baresip to be refused with 488", async {
        loop {
            // The status line as baresip reports it, not any "488" (a
            // port, a timestamp) in its log.
            if caller.log().contains("488 Not Acceptable Here") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(gw.metric("pinless_calls_live").await, 0.0);
}
